// A client that joins a channel and then, when its process is stopped
// (SIGSTOP), falls silent without closing: the server must notice on its
// own. Node's WebSocket (undici) answers the server's protocol pings while
// the process runs. Prints `joined <user>` once the join is acknowledged.
//
//   node --experimental-websocket silent-client.mjs ws://HOST:PORT/ws CHANNEL META_JSON
const [url, channel, meta] = process.argv.slice(2);
if (!url || !channel) {
  console.error("usage: silent-client.mjs WS_URL CHANNEL [META_JSON]");
  process.exit(2);
}
const ws = new WebSocket(url);
let user = null;
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.type === "welcome") {
    user = msg.user;
    ws.send(JSON.stringify({ op: "join", channel, meta: JSON.parse(meta ?? "null"), id: 1 }));
  } else if (msg.type === "reply" && msg.id === 1) {
    console.log(`joined ${user}`);
  }
};
ws.onclose = (event) => {
  console.error(`closed ${event.code} ${event.reason}`);
  process.exit(1);
};
ws.onerror = () => {
  console.error(`cannot connect to ${url}`);
  process.exit(1);
};

// A vigil client in Node.js (18 or newer), on the `ws` package.
//
// Its own keepalive is the one `ws` documents: ping every --keepalive
// seconds and terminate the socket if no pong came since the last ping;
// the server pings this client when it has been silent for the server's
// interval. Both run at once.
//
//     npm install ws
//     node client.mjs --url ws://127.0.0.1:8080/ws --channel lobby
//
// Prints one line per event: `welcome`, `joined`, `message`, `error`,
// `keepalive` (a pong to our keepalive ping), `pings` (with --ping-rate),
// `silent`, `closed`.
// --silent: after joining, freeze like a hung process: nothing read or
// written, the socket left open; the server closes it within its bound.
// --ping-rate N: also send N pings a second and count the server's pongs.

import { parseArgs } from "node:util";
import WebSocket from "ws";

const { values: options } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
    channel: { type: "string", default: "lobby" },
    keepalive: { type: "string", default: "20" },
    "ping-rate": { type: "string", default: "0" },
    silent: { type: "boolean", default: false },
  },
});
const keepalive = Number(options.keepalive);
const pingRate = Number(options["ping-rate"]);
if (!(keepalive > 0) || !(pingRate >= 0)) {
  console.error("--keepalive must be a positive number and --ping-rate not negative");
  process.exit(2);
}

const ws = new WebSocket(options.url);
const timers = [];

ws.on("open", () => {
  let answered = true; // a pong since our last keepalive ping
  let pingedAt = 0;
  ws.on("pong", (data) => {
    answered = true;
    if (data.toString() === "keepalive") {
      console.log(`keepalive rtt_ms=${(performance.now() - pingedAt).toFixed(1)}`);
    }
  });
  timers.push(setInterval(() => {
    if (!answered) {
      console.log("keepalive failed: no pong since our last ping");
      return ws.terminate();
    }
    answered = false;
    pingedAt = performance.now();
    ws.ping("keepalive");
  }, keepalive * 1000));
  if (pingRate > 0) {
    let sent = 0;
    let pongs = 0;
    ws.on("pong", (data) => {
      if (data.toString() !== "keepalive") pongs += 1;
    });
    timers.push(setInterval(() => ws.ping(`p${sent++}`), 1000 / pingRate));
    timers.push(setInterval(() => console.log(`pings sent=${sent} pongs=${pongs}`), 1000));
  }
});

ws.on("message", (text) => {
  const event = JSON.parse(text);
  if (event.type === "welcome") {
    const { interval_ms, timeout_ms } = event.heartbeat;
    console.log(`welcome ${event.user} interval_ms=${interval_ms} timeout_ms=${timeout_ms}`);
    ws.send(JSON.stringify({ op: "join", channel: options.channel, id: 1 }));
  } else if (event.type === "reply" && event.id === 1) {
    console.log(`joined ${options.channel} members=${event.presence.members.length}`);
    const data = { text: "hello from node" };
    ws.send(JSON.stringify({ op: "publish", channel: options.channel, data, id: 2 }));
    if (options.silent) {
      console.log("silent");
      // Blocks this thread, timers and socket included, for an hour.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_600_000);
    }
  } else if (event.type === "message") {
    console.log(`message ${event.from} ${JSON.stringify(event.data)}`);
  } else if (event.type === "error") {
    console.log(`error ${event.code} ${event.message}`);
  }
});

ws.on("close", (code, reason) => {
  timers.forEach(clearInterval);
  console.log(`closed ${code} ${reason.toString() || "no reason"}`);
});

ws.on("error", (error) => {
  console.error(`error: ${error.message}`);
  process.exitCode = 1;
});

// The Node.js baseline for `cargo xtask compare`: the `ws` package's own
// heartbeat idiom (its README, "How to detect and close broken
// connections"): one timer sweeps every client each interval, terminates
// those that did not answer the previous ping, and pings the rest.
//
// To hold the same policy as the others (ping after `interval`, close after
// `interval + timeout` of silence), a client records when it last answered
// instead of a bare isAlive flag. Usage:
//   node server.mjs --port 0 --interval-ms 5000 --timeout-ms 10000
// Prints `listening on 127.0.0.1:PORT` once bound.

import { WebSocketServer } from "ws";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} needs a whole number`);
    process.exit(2);
  }
  return value;
}

const port = option("--port", 9001);
const intervalMs = option("--interval-ms", 5000);
const timeoutMs = option("--timeout-ms", 10000);
const maxSeconds = option("--max-seconds", 3600);

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });

function heard() {
  this.lastHeard = Date.now();
}

wss.on("connection", (ws) => {
  ws.lastHeard = Date.now();
  ws.on("pong", heard);
  ws.on("message", heard);
  ws.on("error", () => ws.terminate());
});

const sweep = setInterval(() => {
  const now = Date.now();
  for (const ws of wss.clients) {
    if (now - ws.lastHeard > intervalMs + timeoutMs) {
      ws.terminate();
      continue;
    }
    ws.ping();
  }
}, intervalMs);

wss.on("listening", () => {
  console.log(`listening on 127.0.0.1:${wss.address().port}`);
});

wss.on("close", () => clearInterval(sweep));
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();

// What an application sees of a connection's life (open, rtt, close,
// reconnecting), the default URL, a dead server torn down at once, a hidden
// tab whose timers are throttled, and probes on `visibilitychange` and
// `online`. Heartbeat: 1 s interval, 1 s timeout; slack 2 s (the default).
import assert from "node:assert/strict";
import { VigilClient, DEFAULTS } from "./vigil.mjs";
import { clock, FakePage, FakeSocket, flush, sockets } from "./fake.mjs";

const page = new FakePage();
const network = new EventTarget();
globalThis.location = { protocol: "https:", host: "example.test:8443" };
const client = new VigilClient({
  WebSocket: FakeSocket,
  now: () => clock.now,
  random: () => 0.5,
  setTimeout: clock.setTimer,
  clearTimeout: clock.clearTimer,
  visibility: page,
  network,
});
const seen = [];
for (const type of ["open", "close", "reconnecting", "rtt"]) {
  client.addEventListener(type, (event) => seen.push([type, event.detail]));
}
const take = () => seen.splice(0);
const INTERVAL = 1000;
const TIMEOUT = 1000;
const BOUND = INTERVAL + TIMEOUT + DEFAULTS.slackMs;

// By default the page's own server, with application-level heartbeats.
client.connect();
let ws = sockets.at(-1);
assert.equal(ws.url, "wss://example.test:8443/ws?heartbeat=app");
assert.deepEqual(ws.protocols, ["vigil"]);
await assert.rejects(client.ping(), (e) => e.code === "not_connected");
ws.welcome(1, "app", INTERVAL, TIMEOUT);
assert.deepEqual(take(), [["open", client.welcome]]);

// The server's pings are answered; each one is life.
for (let i = 1; i <= 5; i++) {
  clock.advance(INTERVAL - 100);
  ws.deliver(`{"type":"ping","id":${i}}`);
  assert.equal(ws.raw.at(-1), `{"type":"pong","id":${i}}`);
}
assert.equal(ws.closed, null);

// `ping()` measures the round trip, as a promise and as an `rtt` event.
const rtt = client.ping();
const probe = ws.last();
assert.equal(probe.op, "ping");
clock.advance(7);
ws.deliver({ type: "pong", id: probe.id });
assert.equal(await rtt, 7);
assert.deepEqual(take(), [["rtt", { rttMs: 7 }]]);

// A server gone silent (no close, no FIN): probed after the interval, dead
// after the timeout and slack; the socket is dropped at once, without
// waiting for the close handshake, and the next one is on its way.
clock.advance(INTERVAL);
assert.equal(ws.last().op, "ping");
clock.advance(TIMEOUT + DEFAULTS.slackMs - 1);
assert.equal(ws.closed, null);
clock.advance(1);
assert.equal(ws.closed.code, 4000);
const [[type, closed], reconnecting] = take();
assert.equal(type, "close");
assert.equal(closed.code, 4000);
assert.match(closed.reason, /heartbeat timeout: the server was silent for \d+ ms/);
assert.equal(closed.reconnect, true);
// The connection was short-lived: attempt 1 of the backoff.
assert.deepEqual(reconnecting, ["reconnecting", { attempt: 1, delayMs: 0.5 * DEFAULTS.initialMaxMs }]);
// Nothing from the old socket counts any more, not even its close event.
ws.serverClose(1006, "");
ws.deliver({ type: "pong", id: 1 });
assert.deepEqual(take(), []);
clock.advance(0.5 * DEFAULTS.initialMaxMs);
ws = sockets.at(-1);
assert.equal(sockets.length, 2);
ws.welcome(2, "app", INTERVAL, TIMEOUT);
take();

// A hidden tab: timers fire only at minute boundaries, but the network
// events arrive. For three minutes the server keeps pinging: every ping is
// answered and the connection survives.
page.show("hidden");
clock.throttleMs = 60_000;
// Re-arm the watchdog under throttling, as a browser would treat it.
ws.deliver('{"type":"ping","id":100}');
for (let second = 1; second <= 180; second++) {
  clock.advance(1000);
  ws.deliver(`{"type":"ping","id":${100 + second}}`);
}
assert.equal(ws.closed, null);
assert.equal(ws.raw.filter((t) => t.startsWith('{"type":"pong"')).length, 181);
assert.deepEqual(take().filter(([type]) => type === "close"), []);

// Visible again: the client probes at once, without waiting for a timer.
page.show("visible");
clock.throttleMs = null;
const wakeProbe = ws.last();
assert.equal(wakeProbe.op, "ping");
ws.deliver({ type: "pong", id: wakeProbe.id });
assert.equal(take()[0][0], "rtt");

// A verdict reached while the page was hidden (its timers late) is
// extended once: one more probe, one more timeout, so that an answer queued
// behind the timer still saves the connection.
const probes = () => ws.raw.filter((t) => t.startsWith('{"op":"ping"')).length;
page.show("hidden");
clock.throttleMs = 60_000;
const before = probes();
while (probes() < before + 2 && ws.closed === null) clock.advance(1000);
assert.equal(ws.closed, null, "the first verdict while hidden is not final");
ws.deliver({ type: "pong", id: ws.last().id });
// But a server that stays silent through the extension is dead.
for (let second = 0; second < 300 && ws.closed === null; second++) clock.advance(1000);
assert.equal(ws.closed?.code, 4000);
clock.throttleMs = null;
take();

// Visible again while waiting to reconnect: retry at once.
assert.equal(client.state, "closed");
page.show("visible");
assert.deepEqual(take(), [["reconnecting", { attempt: 1, delayMs: 0 }]]);
assert.equal(client.state, "connecting");
// That attempt fails; `online` while waiting: retry at once too.
sockets.at(-1).serverClose(1006, "");
assert.deepEqual(take().at(-1), ["reconnecting", { attempt: 2, delayMs: 0.5 * DEFAULTS.baseMs }]);
const count0 = sockets.length;
network.dispatchEvent(new Event("online"));
assert.equal(sockets.length, count0 + 1);
assert.deepEqual(take(), [["reconnecting", { attempt: 2, delayMs: 0 }]]);
ws = sockets.at(-1);
ws.welcome(3, "app", INTERVAL, TIMEOUT);
take();
// `online` while connected: probe at once.
network.dispatchEvent(new Event("online"));
assert.equal(ws.last().op, "ping");

// A short-lived connection moves the backoff on; one up for the stable
// period starts it over.
ws.serverClose(1006, "");
assert.deepEqual(take().at(-1), ["reconnecting", { attempt: 3, delayMs: 0.5 * DEFAULTS.baseMs * DEFAULTS.factor }]);
clock.advance(0.5 * DEFAULTS.baseMs * DEFAULTS.factor);
ws = sockets.at(-1);
ws.welcome(4, "app", INTERVAL, TIMEOUT);
for (let t = 0; t < DEFAULTS.stableAfterMs; t += 500) {
  clock.advance(500);
  ws.deliver('{"type":"ping","id":1}');
}
ws.serverClose(1006, "");
assert.deepEqual(take().at(-1), ["reconnecting", { attempt: 1, delayMs: 0.5 * DEFAULTS.initialMaxMs }]);

// close() while waiting to reconnect: nothing new to report, no reconnect,
// no listeners left behind.
client.close();
assert.deepEqual(take(), []);
const count = sockets.length;
page.show("hidden");
page.show("visible");
network.dispatchEvent(new Event("online"));
clock.advance(10 * DEFAULTS.capMs);
assert.equal(sockets.length, count);
assert.equal(clock.pending(), 0);

// close() while open: a close event.
client.connect();
sockets.at(-1).welcome(8, "app", INTERVAL, TIMEOUT);
take();
client.close();
assert.deepEqual(take(), [["close", { code: 1000, reason: "client closed", reconnect: false }]]);
assert.deepEqual(sockets.at(-1).closed, { code: 1000, reason: "client closed" });

// The application's own pings do not postpone the verdict on a server
// that has fallen silent: the first unanswered probe sets the deadline.
client.connect();
ws = sockets.at(-1);
ws.welcome(9, "app", INTERVAL, TIMEOUT);
take();
const pings = [];
for (let i = 0; i < 40 && ws.closed === null; i++) {
  pings.push(client.ping().catch((e) => e.code));
  clock.advance(250);
}
assert.equal(ws.closed?.code, 4000);
assert.equal(pings.length, (TIMEOUT + DEFAULTS.slackMs) / 250);
assert.deepEqual(new Set(await Promise.all(pings)), new Set(["disconnected"]));
client.close();
take();

// A final close code: a close event that says so, and no reconnecting.
client.connect();
sockets.at(-1).welcome(9, "app", INTERVAL, TIMEOUT);
take();
sockets.at(-1).serverClose(4001, "disconnected by an operator");
assert.deepEqual(take(), [
  ["close", { code: 4001, reason: "disconnected by an operator", reconnect: false }],
]);
await flush();
console.log("ok");

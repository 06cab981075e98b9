// One client's life against a fake server: connect with a token, join
// before the welcome, buffered and stale presence diffs, replies and errors,
// pings answered, probes, a silent server dropped after interval + timeout +
// slack and not before, backoff steps and the server's hints, resume
// (re-join with meta, last will), the final close codes, leave and close.
// Every step is checked as it happens.
import assert from "node:assert/strict";
import { VigilClient, VigilError, DEFAULTS, backoffEnvelope } from "./vigil.mjs";
import { clock, FakeSocket, flush, sockets } from "./fake.mjs";

const { advance, setTimer, clearTimer } = clock;

const client = new VigilClient({
  url: "ws://example.test/ws",
  token: "T",
  WebSocket: FakeSocket,
  now: () => clock.now,
  random: () => 0.5,
  setTimeout: setTimer,
  clearTimeout: clearTimer,
});
const events = { state: [], presence: [], message: [], error: [], welcome: [], rtt: [] };
for (const type of Object.keys(events)) {
  client.addEventListener(type, (event) => events[type].push(event.detail));
}
const lastState = () => events.state.at(-1);
const ann = { name: "Ann" };

// Connect with the token as a subprotocol; a join before the welcome waits.
client.connect();
assert.equal(sockets.length, 1);
assert.equal(sockets[0].url, "ws://example.test/ws");
assert.deepEqual(sockets[0].protocols, ["vigil", "bearer.T"]);
assert.equal(lastState().state, "connecting");
const joined = client.join("room-1", ann);
assert.deepEqual(sockets[0].raw, []);

let ws = sockets[0];
ws.welcome(1);
assert.equal(lastState().state, "open");
assert.equal(events.welcome[0].heartbeat.interval_ms, 20000);
assert.deepEqual(ws.last(), { op: "join", channel: "room-1", meta: ann, id: 1 });

// The diff announcing our own join comes before the snapshot: it is
// buffered, then dropped by the version check (already in the snapshot).
ws.deliver({ type: "presence", channel: "room-1", version: 3, joins: [{ user: "anon-1", meta: ann }], leaves: [] });
assert.equal(events.presence.length, 0);
const members = [{ user: "anon-1", meta: ann }];
ws.deliver({ type: "reply", id: 1, presence: { channel: "room-1", version: 3, members } });
await flush();
assert.deepEqual(await joined, new Map([["anon-1", ann]]));
assert.equal(events.presence.length, 1);
assert.equal(events.presence[0].snapshot, true);

// Diffs apply only above the snapshot's version.
ws.deliver({ type: "presence", channel: "room-1", version: 2, joins: [], leaves: ["anon-1"] });
assert.deepEqual(client.members("room-1"), new Map([["anon-1", ann]]));
ws.deliver({ type: "presence", channel: "room-1", version: 4, joins: [{ user: "bob", meta: null }], leaves: [] });
assert.deepEqual([...client.members("room-1").keys()], ["anon-1", "bob"]);
ws.deliver({ type: "presence", channel: "room-1", version: 5, joins: [], leaves: ["bob"] });
assert.deepEqual([...client.members("room-1").keys()], ["anon-1"]);
assert.equal(events.presence.at(-1).version, 5);

// Application pings are answered with the same id digits, beyond 2^53 too.
ws.deliver('{"type":"ping","id":12345678901234567890}');
assert.equal(ws.raw.at(-1), '{"type":"pong","id":12345678901234567890}');

// Requests: replies resolve, errors reject, errors without a request are events.
const published = client.publish("room-1", { text: "hi" });
assert.deepEqual(ws.last(), { op: "publish", channel: "room-1", data: { text: "hi" }, id: 2 });
ws.deliver({ type: "message", channel: "room-1", from: "anon-1", data: { text: "hi" } });
ws.deliver({ type: "reply", id: 2, delivered: 1 });
assert.equal(await published, 1);
assert.deepEqual(events.message[0], { channel: "room-1", from: "anon-1", data: { text: "hi" }, will: false });
const refused = client.publish("elsewhere", 1);
ws.deliver({ type: "error", id: 3, code: "not_joined", message: "join first" });
await assert.rejects(refused, (e) => e instanceof VigilError && e.code === "not_joined");
ws.deliver({ type: "error", id: null, code: "malformed_json", message: "not JSON" });
assert.equal(events.error.at(-1).code, "malformed_json");
const forbidden = client.join("secret", null);
assert.deepEqual(ws.last(), { op: "join", channel: "secret", id: 4 });
ws.deliver({ type: "error", id: 4, code: "forbidden_channel", message: "no" });
await assert.rejects(forbidden, (e) => e.code === "forbidden_channel");
assert.deepEqual(client.channels, ["room-1"]);
client.setWill("room-1", { gone: true });
assert.deepEqual(ws.last(), { op: "set_will", channel: "room-1", data: { gone: true }, id: 5 });
ws.deliver({ type: "reply", id: 5 });
ws.deliver({ type: "message", channel: "room-1", from: "carl", data: "bye", will: true });
assert.equal(events.message.at(-1).will, true);

// After an interval of silence the client probes with a ping request (the
// server answers it in every heartbeat mode); the answer keeps the
// connection and measures the round trip.
advance(20000);
assert.deepEqual(ws.last(), { op: "ping", id: 6 });
advance(3);
ws.deliver({ type: "pong", id: 6 });
assert.deepEqual(events.rtt, [{ rttMs: 3 }]);
advance(20000);
assert.deepEqual(ws.last(), { op: "ping", id: 7 });
// No answer: dead after timeout + slack, not a millisecond before.
const lost = client.publish("room-1", 2);
advance(DEFAULTS.slackMs + 10000 - 1);
assert.equal(ws.closed, null);
advance(1);
assert.equal(ws.closed.code, 4000);
await assert.rejects(lost, (e) => e.code === "disconnected");
// The connection was stable: the first retry waits random * initialMax.
assert.equal(lastState().state, "closed");
assert.equal(lastState().reconnectInMs, 0.5 * DEFAULTS.initialMaxMs);

// Late answers from the dead socket change nothing.
ws.deliver({ type: "presence", channel: "room-1", version: 9, joins: [{ user: "ghost", meta: null }], leaves: [] });
assert.equal(client.members("room-1").has("ghost"), false);

// Resume: the next connection re-joins with the meta and re-sets the will;
// its snapshot replaces the map whatever its version (a new server).
advance(499);
assert.equal(sockets.length, 1);
advance(1);
assert.equal(sockets.length, 2);
ws = sockets[1];
ws.welcome(2, "app");
assert.deepEqual(ws.sent, [
  { op: "join", channel: "room-1", meta: ann, id: 9 },
  { op: "set_will", channel: "room-1", data: { gone: true }, id: 10 },
]);
const rejoined = [{ user: "anon-2", meta: ann }, { user: "carol", meta: null }];
ws.deliver({ type: "reply", id: 9, presence: { channel: "room-1", version: 1, members: rejoined } });
ws.deliver({ type: "reply", id: 10 });
await flush();
const resync = events.presence.at(-1);
assert.deepEqual(resync.leaves, ["anon-1"]);
assert.deepEqual(resync.joins.map((j) => j.user), ["anon-2", "carol"]);
assert.deepEqual([...client.members("room-1").keys()], ["anon-2", "carol"]);

// App mode: the probe is the same; any answer keeps the connection.
advance(20000);
assert.deepEqual(ws.last(), { op: "ping", id: 11 });
ws.deliver('{"type":"pong","id":11}');
advance(20000 + 10000);
assert.equal(ws.closed, null);

// 1008 (policy): reconnect after the policy delay plus the backoff (the
// connection was stable: the sequence starts over).
ws.serverClose(1008, "too many invalid requests");
assert.equal(lastState().reconnectInMs, DEFAULTS.policyDelayMs + 0.5 * DEFAULTS.initialMaxMs);
advance(lastState().reconnectInMs);
assert.equal(sockets.length, 3);
// No welcome: given up after the connect timeout, next backoff step.
advance(DEFAULTS.connectTimeoutMs);
assert.equal(sockets[2].closed.code, 4000);
assert.equal(lastState().reconnectInMs, 0.5 * DEFAULTS.baseMs);
advance(lastState().reconnectInMs);
assert.equal(sockets.length, 4);
// 1001 (server shutting down, "reconnect later"): back after a random
// delay spread over at least the server's drain window, not the short
// backoff step a short-lived connection would get.
sockets[3].welcome(4);
sockets[3].serverClose(1001, "server shutting down; reconnect later");
assert.ok(DEFAULTS.shutdownDelayMs > DEFAULTS.baseMs * DEFAULTS.factor);
assert.equal(lastState().reconnectInMs, 0.5 * DEFAULTS.shutdownDelayMs);
advance(lastState().reconnectInMs);
assert.equal(sockets.length, 5);

// 1002, 1007, 1009 (and 1000): closed for good.
sockets[4].welcome(5);
sockets[4].serverClose(1002, "protocol error");
assert.deepEqual(lastState(), { state: "closed", code: 1002, reason: "protocol error", reconnectInMs: null });
advance(10 * DEFAULTS.capMs);
assert.equal(sockets.length, 5);
assert.equal(clock.pending(), 0);
for (const code of [1007, 1009, 1000]) {
  client.connect();
  sockets.at(-1).welcome(sockets.length);
  sockets.at(-1).serverClose(code, "final");
  advance(10 * DEFAULTS.capMs);
  assert.equal(lastState().reconnectInMs, null, `close ${code}`);
}
// A join waiting for a connection that ends for good is rejected.
client.connect();
const late = client.join("late", null);
sockets.at(-1).serverClose(1009, "message too big");
await assert.rejects(late, (e) => e.code === "closed");
await client.leave("late");
const count = sockets.length;

// Leaving drops the channel from resume; close() stops for good.
client.connect();
ws = sockets.at(-1);
ws.welcome(count + 1);
const leave = client.leave("room-1");
assert.equal(events.presence.at(-1).left, true);
assert.deepEqual(ws.last(), { op: "leave", channel: "room-1", id: ws.last().id });
ws.deliver({ type: "reply", id: ws.last().id });
await leave;
assert.deepEqual(client.channels, []);
client.close();
assert.deepEqual(ws.closed, { code: 1000, reason: "client closed" });
advance(10 * DEFAULTS.capMs);
assert.equal(sockets.length, count + 1);
assert.equal(clock.pending(), 0);

// Full jitter under an exponential envelope with a cap.
const envelopes = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffEnvelope(DEFAULTS, n));
assert.deepEqual(envelopes, [1000, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
console.log("ok");

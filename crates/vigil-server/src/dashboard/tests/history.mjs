// Recovery in a channel with history: messages carry offsets, a re-join
// after a dropped connection names the last one, the missed messages
// arrive once and in order, and a lost history is said plainly.
import assert from "node:assert/strict";
import { VigilClient } from "./vigil.mjs";
import { clock, FakeSocket, flush, sockets } from "./fake.mjs";

const client = new VigilClient({
  url: "ws://test/ws",
  WebSocket: FakeSocket,
  now: () => clock.now,
  random: () => 0.5,
  setTimeout: clock.setTimer,
  clearTimeout: clock.clearTimer,
});
const seen = { message: [], recovery: [] };
for (const type of Object.keys(seen)) {
  client.addEventListener(type, (event) => seen[type].push(event.detail));
}
// The next connection, whatever the backoff has grown to.
const reconnected = (connection) => {
  const before = sockets.length;
  for (let waited = 0; sockets.length === before && waited < 600_000; waited += 100) {
    clock.advance(100);
  }
  assert.equal(sockets.length, before + 1, "a new connection within 10 minutes");
  const ws = sockets.at(-1);
  ws.welcome(connection, "app", 1000, 1000);
  return ws;
};
const reply = (ws, fields) => {
  const join = ws.last();
  assert.equal(join.op, "join");
  ws.deliver({ type: "reply", id: join.id, presence: { channel: "chat", version: 1, members: [] }, ...fields });
  return join;
};

client.connect();
let ws = sockets.at(-1);
ws.welcome(1, "app", 1000, 1000);
const joined = client.join("chat");
// A first join asks for nothing, and learns where the channel is.
assert.equal(reply(ws, { history: { offset: 40, epoch: "e1" } }).since, undefined);
await joined;
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "a", offset: 41, epoch: "e1" });
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "b", offset: 42, epoch: "e1" });
assert.deepEqual(
  seen.message.map((m) => [m.data, m.offset, m.epoch]),
  [["a", 41, "e1"], ["b", 42, "e1"]],
);

// The connection drops; the re-join names the last message received.
ws.serverClose(1006, "");
ws = reconnected(2);
assert.deepEqual(reply(ws, { recovered: true, missed: 2, history: { offset: 44, epoch: "e1" } }).since, {
  offset: 42,
  epoch: "e1",
});
await flush();
assert.deepEqual(seen.recovery, [{ channel: "chat", recovered: true, missed: 2, reason: null }]);
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "c", offset: 43, epoch: "e1" });
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "d", offset: 44, epoch: "e1" });
// Never twice.
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "d", offset: 44, epoch: "e1" });
assert.deepEqual(seen.message.slice(2).map((m) => m.data), ["c", "d"]);

// Dropped before a missed message arrived: the next re-join still asks
// from the last one received, not from the reply's newest offset.
ws.serverClose(1006, "");
ws = reconnected(3);
assert.deepEqual(reply(ws, { recovered: true, missed: 1, history: { offset: 45, epoch: "e1" } }).since, {
  offset: 44,
  epoch: "e1",
});
ws.serverClose(1006, "");
ws = reconnected(4);
// A restarted server lost the history: said plainly, and this client
// starts again from the new epoch.
assert.deepEqual(
  reply(ws, { recovered: false, recovery: "epoch_changed", history: { offset: 3, epoch: "e2" } }).since,
  { offset: 44, epoch: "e1" },
);
await flush();
assert.deepEqual(seen.recovery.at(-1), { channel: "chat", recovered: false, missed: null, reason: "epoch_changed" });
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "e", offset: 4, epoch: "e2" });
assert.deepEqual(seen.message.at(-1), { channel: "chat", from: "bob", data: "e", will: false, offset: 4, epoch: "e2" });
// A join on an open connection (new meta) asks for nothing; its reply,
// even one handled after newer messages, never moves the position back.
const rejoined = client.join("chat", { status: "away" });
const metaJoin = ws.last();
assert.equal(metaJoin.since, undefined);
ws.deliver({ type: "message", channel: "chat", from: "bob", data: "g", offset: 5, epoch: "e2" });
ws.deliver({ type: "reply", id: metaJoin.id, presence: { channel: "chat", version: 2, members: [] }, history: { offset: 4, epoch: "e2" } });
await rejoined;
ws.serverClose(1006, "");
ws = reconnected(5);
assert.deepEqual(reply(ws, { recovered: true, missed: 0, history: { offset: 5, epoch: "e2" } }).since, {
  offset: 5,
  epoch: "e2",
});
// A channel without history: messages as before, no offsets.
ws.deliver({ type: "message", channel: "lobby", from: "bob", data: "f" });
assert.deepEqual(seen.message.at(-1), { channel: "lobby", from: "bob", data: "f", will: false });
client.close();
console.log("ok");

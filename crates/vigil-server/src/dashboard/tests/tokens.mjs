// Tokens over a connection's life: `getToken` asked before connecting, a
// refresh sent in-band ahead of `exp` (channels the new token no longer
// allows are dropped), a fresh token for every reconnect, a failing
// `getToken` retried with backoff, and 4003 final without `getToken`.
import assert from "node:assert/strict";
import { VigilClient, TOKEN_EXPIRED_CODE, tokenExpiry } from "./vigil.mjs";
import { clock, FakePage, FakeSocket, flush, sockets } from "./fake.mjs";

globalThis.location = { protocol: "http:", host: "example.test" };
const WALL_START_MS = 1_800_000_000_000;
const wallClock = () => WALL_START_MS + clock.now;
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
/** An unsigned-looking token for alice expiring `seconds` from now. */
const tokenFor = (seconds, n) =>
  `${b64({ alg: "HS256" })}.${b64({ sub: "alice", exp: Math.floor(wallClock() / 1000) + seconds, n })}.sig${n}`;

assert.equal(tokenExpiry(tokenFor(100, 0)), WALL_START_MS / 1000 + 100);
assert.equal(tokenExpiry("not a token"), null);

let issued = 0;
let failNext = false;
const client = new VigilClient({
  WebSocket: FakeSocket,
  now: () => clock.now,
  wallClock,
  random: () => 0.5,
  setTimeout: clock.setTimer,
  clearTimeout: clock.clearTimer,
  visibility: new FakePage(),
  network: new EventTarget(),
  getToken: async () => {
    if (failNext) {
      failNext = false;
      throw new Error("the token service is down");
    }
    issued += 1;
    return tokenFor(100, issued);
  },
});
const seen = [];
for (const type of ["token", "close", "reconnecting", "error"]) {
  client.addEventListener(type, (event) => seen.push([type, event.detail]));
}
const take = () => seen.splice(0);
// A long heartbeat, so that only the token timers matter here.
const welcome = (ws, n) => ws.welcome(n, "protocol", 1_000_000, 10_000);

// Connecting asks for a token first, then sends it.
client.connect();
assert.equal(sockets.length, 0, "no socket before the token");
await flush();
let ws = sockets.at(-1);
assert.deepEqual(ws.protocols, ["vigil", `bearer.${tokenFor(100, 1)}`]);
welcome(ws, 1);
const joined = client.join("secret");
const join = ws.last();
ws.deliver({ type: "reply", id: join.id, presence: { channel: "secret", version: 1, members: [] } });
await joined;

// 100 s left: the refresh goes 30 s (refreshAheadMs) before `exp`.
clock.advance(69_000);
await flush();
assert.equal(issued, 1, "not yet");
clock.advance(1_000);
await flush();
assert.equal(issued, 2);
const refresh = ws.last();
assert.deepEqual(refresh, { op: "refresh", token: tokenFor(100, 2), id: refresh.id });
ws.deliver({ type: "reply", id: refresh.id, valid_until: 1234, left: ["secret"] });
await flush();
assert.deepEqual(take(), [["token", { validUntil: 1234, left: ["secret"] }]]);
assert.deepEqual(client.channels, [], "a channel the new token forbids is not re-joined");

// The next refresh is armed from the new token's `exp`.
clock.advance(70_000);
await flush();
assert.equal(issued, 3);
const refused = ws.last();
assert.equal(refused.op, "refresh");
ws.deliver({ type: "error", id: refused.id, code: "wrong_subject", message: "the token is for bob" });
await flush();
assert.deepEqual(take(), [["error", { code: "wrong_subject", message: "the token is for bob", id: null }]]);

// The server closes at expiry: the client reconnects with a fresh token.
ws.serverClose(TOKEN_EXPIRED_CODE, "token expired");
const [[, closed], [, reconnecting]] = take();
assert.deepEqual(closed, { code: TOKEN_EXPIRED_CODE, reason: "token expired", reconnect: true });
clock.advance(reconnecting.delayMs);
await flush();
assert.equal(issued, 4, "a fresh token for the reconnect");
ws = sockets.at(-1);
assert.deepEqual(ws.protocols, ["vigil", `bearer.${tokenFor(100, 4)}`]);

// A `getToken` that fails is a failed attempt: retried with backoff.
welcome(ws, 2);
failNext = true;
ws.serverClose(1006, "");
const delayOf = (events) => events.find(([type]) => type === "reconnecting")[1].delayMs;
clock.advance(delayOf(take()));
await flush();
const events = take();
const failed = events.find(([type, detail]) => type === "close" && detail.code === null);
assert.ok(failed, "the failed getToken is reported");
assert.match(failed[1].reason, /getToken failed: the token service is down/);
const before = sockets.length;
clock.advance(delayOf(events));
await flush();
assert.equal(sockets.length, before + 1, "the next attempt connects");
client.close();

// Without getToken, 4003 is final: the same token would be refused.
const plain = new VigilClient({
  WebSocket: FakeSocket,
  now: () => clock.now,
  random: () => 0.5,
  setTimeout: clock.setTimer,
  clearTimeout: clock.clearTimer,
  visibility: new FakePage(),
  network: new EventTarget(),
  token: tokenFor(5, 99),
});
const plainSeen = [];
plain.addEventListener("close", (event) => plainSeen.push(event.detail));
plain.connect();
ws = sockets.at(-1);
welcome(ws, 3);
ws.serverClose(TOKEN_EXPIRED_CODE, "token expired");
assert.deepEqual(plainSeen, [{ code: TOKEN_EXPIRED_CODE, reason: "token expired", reconnect: false }]);
assert.equal(plain.state, "closed");
clock.advance(120_000);
assert.equal(sockets.at(-1), ws, "no reconnect");

console.log("ok");

// Test doubles for vigil.js under node: a virtual clock with fake timers
// (optionally throttled like a hidden tab's), a fake WebSocket a test plays
// the server with, and a fake page whose visibility a test flips.

/** Virtual time: timers fire only from `advance`, in order. */
export const clock = {
  now: 0,
  timers: [],
  seq: 0,
  // When set, a timer fires no earlier than the next multiple of this many
  // milliseconds (browsers align hidden tabs' timers to about a minute).
  throttleMs: null,
  setTimer(f, ms) {
    let at = clock.now + ms;
    if (clock.throttleMs !== null) at = Math.ceil(at / clock.throttleMs) * clock.throttleMs;
    const timer = { at, seq: ++clock.seq, f };
    clock.timers.push(timer);
    return timer;
  },
  clearTimer(timer) {
    clock.timers = clock.timers.filter((t) => t !== timer);
  },
  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms) {
    const end = clock.now + ms;
    for (;;) {
      clock.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = clock.timers[0];
      if (!next || next.at > end) break;
      clock.timers.shift();
      clock.now = Math.max(clock.now, next.at);
      next.f();
    }
    clock.now = end;
  },
  pending() {
    return clock.timers.length;
  },
};

/** Lets promise callbacks run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Every socket the client opened, oldest first. */
export const sockets = [];

export class FakeSocket {
  constructor(url, protocols) {
    Object.assign(this, { url, protocols, raw: [], closed: null });
    sockets.push(this);
  }
  send(text) {
    if (this.closed) throw new Error("closed");
    this.raw.push(text);
  }
  close(code, reason) {
    this.closed ??= { code, reason };
  }
  get sent() {
    return this.raw.map((text) => JSON.parse(text));
  }
  last() {
    return JSON.parse(this.raw.at(-1));
  }
  deliver(message) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }
  serverClose(code, reason = "") {
    this.closed ??= { code, reason };
    this.onclose?.({ code, reason });
  }
  welcome(connection, mode = "protocol", interval_ms = 20000, timeout_ms = 10000) {
    const heartbeat = { interval_ms, timeout_ms, mode };
    this.deliver({ type: "welcome", connection, user: `anon-${connection}`, heartbeat, version: "0.1.0" });
  }
}

/** A page: `visibilityState` and its `visibilitychange` events. */
export class FakePage extends EventTarget {
  visibilityState = "visible";
  show(state) {
    this.visibilityState = state;
    this.dispatchEvent(new Event("visibilitychange"));
  }
}

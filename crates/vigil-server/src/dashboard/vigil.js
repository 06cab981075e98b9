// @ts-self-types="./vigil.d.ts"
// vigil.js: the browser client of the vigil server (docs/PROTOCOL.md), served
// at /vigil.js with its TypeScript declarations at /vigil.d.ts. Plain ES
// module, no build step, no dependencies.
//
//   import { VigilClient } from "/vigil.js";
//   const client = new VigilClient({ token });        // token optional
//   client.addEventListener("presence", (e) => render(e.detail.members));
//   client.connect();
//   await client.join("room-1", { name: "Ann" });     // kept across reconnects
//
// Watching the server. A page's script can neither see nor send WebSocket
// pings, so the client connects with `?heartbeat=app`: the server pings it
// with text (`{"type":"ping","id":N}`), which it answers with the same id,
// and the welcome message says how often (`interval_ms`, `timeout_ms`). Any
// message at all proves the server alive: the deadline is derived from the
// last network callback, never from a timer's own schedule. After
// `interval_ms` of silence the client probes (`{"op":"ping","id":N}`, which
// the server answers in every heartbeat mode, and whose answer gives the
// round trip); if nothing arrives within `timeout_ms` (plus `slackMs`) after
// the probe, the server is declared dead and the socket is dropped at once,
// without waiting for a close handshake that will never come.
//
// Background tabs. Browsers run the timers of hidden tabs late (about once a
// minute after a while), but deliver network events. The server drives the
// heartbeat, so a hidden client keeps answering; its own watchdog judges
// from the clock when it fires, and a verdict reached after a late timer or
// a hidden spell is extended once (a fresh probe, a fresh timeout) so that
// input queued meanwhile is read first. When the page becomes visible again
// or the browser comes `online`, the client probes at once (or retries at
// once, if it was waiting to reconnect).
//
// Reconnecting. The first retry after a loss waits a random delay in
// [0, initialMaxMs) so that the clients of a restarted server do not all
// come back at once; later retries wait uniform [0, min(capMs, baseMs *
// factor^(n-1))) (exponential backoff with full jitter), and a connection
// that stayed up `stableAfterMs` resets the sequence. The server's hints
// are followed: after 1001 (shutting down, "reconnect later") the delay is
// at least uniform [0, shutdownDelayMs), the spread the server asks for
// while it drains; after 1008 (policy) `policyDelayMs` is added. Close codes
// 1000, 1002, 1007, 1009 and 4001 mean "do not reconnect" (PROTOCOL.md,
// close codes): the client stays closed. After every reconnect it re-joins
// its channels with their meta and re-sets its last will (resume). In a
// channel with history (PROTOCOL.md, Message history and recovery) it
// re-joins with the offset and epoch of the last message it received, so
// the server sends exactly what it missed; a `recovery` event says whether
// that was all of it.
//
// Tokens. A token expires; the server closes a connection whose token did
// (4003 "token expired"). With the `getToken` option (an async function
// returning a fresh JWT) the client asks for a token before every reconnect,
// and ahead of the current token's `exp` (read from the token, at most
// `refreshAheadMs` early and never before half its remaining life) it sends
// the new one in-band (`{"op":"refresh"}`): the connection never drops.
// Without `getToken`, 4003 is final: the same token would be refused.
//
// Events (an EventTarget; the payload is `event.detail`):
//   open         the server's welcome: {connection, user, heartbeat, version}
//   close        {code, reason, reconnect: bool}: a connection ended
//   reconnecting {attempt, delayMs}: the next connection starts in delayMs
//   rtt          {rttMs}: the round trip of an answered probe
//   presence     {channel, version, joins, leaves, members: Map(user -> meta),
//                 snapshot: bool, left: bool}: after every applied change
//   count        {channel, version, users, connections, pages: bool}: a
//                counted channel's numbers (a "counts" namespace, or one past
//                its presence_cap), from a join reply or a presence_count
//                event; such a channel's `members` stay empty
//   message      {channel, from, data, will}, and in a channel with
//                history {offset, epoch} (each offset once, in order)
//   recovery     {channel, recovered: bool, missed, reason}: a re-join with
//                the last offset; `recovered: false` (reason: epoch_changed,
//                too_old, ...) means messages were lost: reload the
//                channel's state
//   error        {code, message, id}: server errors no pending request claimed
//   state        {state: "connecting"|"open"|"closed", code, reason,
//                 reconnectInMs}: every change of `state`
//   welcome      the same detail as `open`
//   token        {validUntil, left}: a token was refreshed in-band; `left`
//                lists the channels the new token no longer allows

/**
 * Close codes after which the client stays closed (PROTOCOL.md): normal
 * closure, the client's own faults (protocol error, invalid UTF-8, message
 * too big), and 4001, disconnected by an operator.
 */
export const NO_RECONNECT_CODES = Object.freeze([1000, 1002, 1007, 1009, 4001]);

/** The close code this client sends when it gives up on a silent server. */
export const CLIENT_TIMEOUT_CODE = 4000;

/** Defaults of the options; the backoff mirrors vigil-core's BackoffConfig. */
export const DEFAULTS = Object.freeze({
  initialMaxMs: 1000,
  baseMs: 500,
  factor: 2,
  capMs: 30000,
  stableAfterMs: 10000,
  policyDelayMs: 5000,
  connectTimeoutMs: 10000,
  slackMs: 2000,
  shutdownDelayMs: 5000,
  refreshAheadMs: 30000,
  heartbeat: "app",
});

/** The close code of a connection whose token expired. */
export const TOKEN_EXPIRED_CODE = 4003;

/** A JWT's `exp` (seconds since the epoch), or null if it has none. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

// Errors that will not go away by asking again: the channel is dropped from
// the set re-joined after each reconnect.
const PERMANENT_JOIN_ERRORS = new Set([
  "invalid_channel",
  "forbidden_channel",
  "too_many_channels",
]);

// The heartbeat used until a welcome says otherwise (the server's defaults).
const FALLBACK_HEARTBEAT = Object.freeze({
  interval_ms: 20000,
  timeout_ms: 10000,
  mode: "protocol",
});

// The exact text form of an application ping (vigil-ws writes it so): the
// id digits are echoed as they are, since ids may exceed 2^53.
const PING_TEXT = /^\{"type":"ping","id":(\d{1,20})\}$/;

/** A request the server refused (`code` from PROTOCOL.md) or that was lost. */
export class VigilError extends Error {
  constructor(code, message, id = null) {
    super(message);
    this.name = "VigilError";
    this.code = code;
    this.id = id;
  }
}

/** The exclusive upper bound of the delay of retry `attempt` (0-based). */
export function backoffEnvelope(options, attempt) {
  if (attempt === 0) return options.initialMaxMs;
  return Math.min(options.capMs, options.baseMs * Math.pow(options.factor, attempt - 1));
}

function defaultUrl(heartbeat) {
  const location = globalThis.location;
  if (!location) throw new TypeError("VigilClient: no `url` option and no page location");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws?heartbeat=${heartbeat === "protocol" ? "protocol" : "app"}`;
}

function positive(value, fallback) {
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

export class VigilClient extends EventTarget {
  #options;
  #url;
  #token;
  #getToken;
  #wallClock;
  #WebSocket;
  #now;
  #random;
  #setTimeout;
  #clearTimeout;

  #ws = null;
  #running = false;
  #state = "closed";
  #welcome = null;
  #seq = 0;
  #pending = new Map();
  // channel -> {meta, version, members, synced, buffer, waiters}
  #channels = new Map();
  #will = null;
  // Whether the token may be stale (after a loss): `getToken` is asked.
  #tokenStale = false;
  // Counts `getToken` calls, so that a late answer for an abandoned
  // attempt is ignored.
  #tokenRequests = 0;
  #refreshTimer = null;

  #attempt = 0;
  #retryTimer = null;
  #watchTimer = null;
  #startedAt = 0;
  #openedAt = null;
  #lastReceived = 0;
  #probeSentAt = null;
  // The probe ids still unanswered, with when they were sent.
  #probes = new Map();
  // When the watchdog was due, to notice that it fired late.
  #watchDueAt = null;
  // Whether the page was hidden since the current silence began.
  #hiddenSpell = false;
  // Whether the current silence already got its one extension.
  #extended = false;
  #visibility;
  #network;
  #listening = false;

  /**
   * Options: `url` (default `ws(s)://<page host>/ws?heartbeat=app`, or
   * `heartbeat=protocol` with the `heartbeat` option), `token` (a JWT, sent
   * as the subprotocol `bearer.<token>`), `getToken` (an async function
   * returning a fresh token: called before every reconnect, and ahead of
   * expiry to refresh in-band), the backoff, watchdog and refresh numbers of
   * DEFAULTS, and for tests `WebSocket`, `now`, `wallClock` (default
   * `Date.now`, against tokens' `exp`), `random`, `setTimeout`,
   * `clearTimeout`, `visibility` (default `document`: an EventTarget of
   * `visibilitychange` with `visibilityState`) and `network` (default the
   * global object: an EventTarget of `online`).
   */
  constructor(options = {}) {
    super();
    this.#options = { ...DEFAULTS, ...options };
    this.#url = options.url ?? defaultUrl(this.#options.heartbeat);
    this.#token = options.token ?? null;
    this.#getToken = typeof options.getToken === "function" ? options.getToken : null;
    this.#wallClock = options.wallClock ?? (() => Date.now());
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#now = options.now ?? (() => globalThis.performance.now());
    this.#random = options.random ?? Math.random;
    this.#setTimeout = options.setTimeout ?? ((f, ms) => globalThis.setTimeout(f, ms));
    this.#clearTimeout = options.clearTimeout ?? ((t) => globalThis.clearTimeout(t));
    this.#visibility = options.visibility ?? globalThis.document ?? null;
    this.#network = options.network ?? (globalThis.addEventListener ? globalThis : null);
  }

  /** "connecting", "open" (welcome received) or "closed". */
  get state() {
    return this.#state;
  }

  /** The welcome of the current (or last) connection, or null. */
  get welcome() {
    return this.#welcome;
  }

  /** The channels this client keeps joined. */
  get channels() {
    return [...this.#channels.keys()];
  }

  /** A copy of the local member map (user -> meta) of a joined channel. */
  members(channel) {
    return new Map(this.#channels.get(channel)?.members ?? []);
  }

  /** Starts connecting; reconnects until `close()` or a final close code. */
  connect() {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    this.#listen(true);
    this.#open();
  }

  /**
   * Measures the round trip to the server now: resolves with it in
   * milliseconds (also sent as an `rtt` event); rejects if not connected or
   * if the connection is lost first.
   */
  ping() {
    if (!this.#isOpen()) {
      return Promise.reject(new VigilError("not_connected", "not connected to the server"));
    }
    this.#probeNow();
    const id = this.#seq;
    return new Promise((resolve, reject) => this.#probes.get(id).waiters.push({ resolve, reject }));
  }

  /** Uses `token` from now on and reconnects at once with it. */
  setToken(token) {
    this.#token = token || null;
    if (!this.#running) return this.connect();
    this.#discard(1000, "new token");
    this.#attempt = 0;
    this.#open();
  }

  /** Closes for good (1000); pending requests and joins are rejected. */
  close() {
    const was = this.#state;
    this.#running = false;
    this.#tokenRequests += 1;
    this.#listen(false);
    this.#discard(1000, "client closed");
    this.#rejectJoins("client closed");
    if (was !== "closed") this.#emit("close", { code: 1000, reason: "client closed", reconnect: false });
    this.#setState("closed", { code: 1000, reason: "client closed", reconnectInMs: null });
  }

  /**
   * Joins `channel` with presence `meta` (any JSON), now or after the next
   * connect, and again after every reconnect. Resolves with the members once
   * joined; rejects if the server refuses.
   */
  join(channel, meta = null) {
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = {
        meta,
        version: -1,
        members: new Map(),
        synced: false,
        buffer: [],
        waiters: [],
        // {offset, epoch} of the last message received (channels with
        // history): a re-join asks for what followed it.
        position: null,
      };
      this.#channels.set(channel, entry);
    }
    entry.meta = meta;
    const joined = new Promise((resolve, reject) => entry.waiters.push({ resolve, reject }));
    if (this.#isOpen()) this.#sendJoin(channel, entry, false);
    return joined;
  }

  /** Leaves `channel`: it is no longer re-joined; its member map is dropped. */
  leave(channel) {
    if (!this.#channels.has(channel)) return Promise.resolve();
    this.#dropChannel(channel, new VigilError("left", `left ${channel} before it was joined`));
    if (!this.#isOpen()) return Promise.resolve();
    return this.#request({ op: "leave", channel }).then(() => undefined);
  }

  /** Sends `data` to a joined channel; resolves with the number delivered. */
  publish(channel, data) {
    return this.#request({ op: "publish", channel, data: data ?? null }).then((r) => r.delivered);
  }

  /**
   * Who is in `channel` now: {channel, version, members: Map}; for a
   * counted channel `members` is null and `counts` holds {users,
   * connections, pages} (page through it with presencePages).
   */
  presence(channel) {
    return this.#request({ op: "presence", channel }).then((reply) => {
      const entry = this.#channels.get(channel);
      if (entry?.synced) this.#applySnapshot(channel, entry, reply.presence, false);
      const p = reply.presence;
      if (p.mode === "counts") {
        const counts = { users: p.users, connections: p.connections, pages: p.pages };
        return { channel, version: p.version, members: null, counts };
      }
      return {
        channel,
        version: p.version,
        members: new Map(p.members.map((m) => [m.user, m.meta ?? null])),
      };
    });
  }

  /** How many are in `channel`, without the list: {channel, version, users, connections}. */
  presenceStats(channel) {
    return this.#request({ op: "presence_stats", channel }).then((reply) => reply.stats);
  }

  /**
   * The members of `channel` page by page, in user order, for a channel too
   * big to take whole: `for await (const page of client.presencePages(c))`,
   * each page {channel, version, members: Map(user -> meta)}, at most
   * `limit` (1 to 1000) members each. A user present from the first page to
   * the last is on exactly one page, whoever joins or leaves meanwhile.
   */
  async *presencePages(channel, { limit = 1000 } = {}) {
    let cursor = null;
    do {
      const body = cursor === null ? { op: "presence", channel, limit } : { op: "presence", channel, limit, cursor };
      const page = (await this.#request(body)).presence;
      yield {
        channel,
        version: page.version,
        members: new Map(page.members.map((m) => [m.user, m.meta ?? null])),
      };
      cursor = page.next ?? null;
    } while (cursor !== null);
  }

  /**
   * Sets the last will: `data` is published to `channel` if this connection
   * ends abnormally; `null` clears it. Re-set after every reconnect.
   */
  setWill(channel, data) {
    this.#will = data == null ? null : { channel, data };
    if (!this.#isOpen()) return Promise.resolve();
    return this.#request({ op: "set_will", channel, data: data ?? null }).then(() => undefined);
  }

  // --- connection ---------------------------------------------------------

  #isOpen() {
    return this.#ws !== null && this.#state === "open";
  }

  #open() {
    this.#retryTimer = null;
    this.#welcome = null;
    this.#setState("connecting", { code: null, reason: "", reconnectInMs: null });
    if (this.#getToken !== null && (this.#token === null || this.#tokenStale)) {
      const request = ++this.#tokenRequests;
      const current = () => request === this.#tokenRequests && this.#running;
      this.#fetchToken().then(
        (token) => {
          if (!current()) return;
          this.#token = token || null;
          this.#tokenStale = false;
          this.#openSocket();
        },
        (error) => {
          if (current()) this.#lost(null, `getToken failed: ${error?.message ?? error}`);
        },
      );
      return;
    }
    this.#openSocket();
  }

  // `getToken()`, given up after `connectTimeoutMs`.
  #fetchToken() {
    const ms = this.#options.connectTimeoutMs;
    let timer = null;
    const timeout = new Promise((_, reject) => {
      timer = this.#setTimeout(() => reject(new Error(`no token within ${ms} ms`)), ms);
    });
    return Promise.race([Promise.resolve().then(() => this.#getToken()), timeout]).finally(() =>
      this.#clearTimeout(timer),
    );
  }

  #openSocket() {
    const protocols = this.#token === null ? ["vigil"] : ["vigil", "bearer." + this.#token];
    let ws;
    try {
      ws = new this.#WebSocket(this.#url, protocols);
    } catch (error) {
      // A bad URL or token: asking again will not help.
      this.#running = false;
      this.#listen(false);
      this.#emit("close", { code: null, reason: String(error), reconnect: false });
      this.#setState("closed", { code: null, reason: String(error), reconnectInMs: null });
      return;
    }
    this.#ws = ws;
    this.#startedAt = this.#now();
    this.#lastReceived = this.#startedAt;
    this.#openedAt = null;
    this.#probeSentAt = null;
    this.#hiddenSpell = this.#hidden();
    this.#extended = false;
    ws.onmessage = (event) => {
      if (this.#ws === ws) this.#onMessage(event.data);
    };
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#lost(event.code, event.reason);
    };
    // Browsers follow an error with a close event; some runtimes never
    // close a socket that failed to connect, so a failed connect is a loss.
    ws.onerror = () => {
      if (this.#ws === ws && ws.readyState !== 1) this.#lost(1006, "connection failed");
    };
    this.#schedule(this.#options.connectTimeoutMs);
  }

  // Forgets the current socket without waiting for its close handshake (a
  // dead server never completes it), and everything tied to it.
  #discard(code, reason) {
    this.#cancelTimers();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      // A browser may send only 1000 and 3000-4999.
      const sendable = code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
      try {
        ws.close(sendable, reason.slice(0, 120));
      } catch {
        // Already closing: nothing more to do.
      }
    }
    const lost = () => new VigilError("disconnected", "the connection was lost before the reply");
    for (const [, pending] of this.#pending) pending.reject(lost());
    this.#pending.clear();
    for (const [, probe] of this.#probes) for (const waiter of probe.waiters) waiter.reject(lost());
    this.#probes.clear();
    for (const entry of this.#channels.values()) {
      entry.synced = false;
      entry.buffer = [];
    }
  }

  #lost(code, reason) {
    const wasStable =
      this.#openedAt !== null && this.#now() - this.#openedAt >= this.#options.stableAfterMs;
    this.#discard(code, reason);
    if (!this.#running) return;
    this.#tokenStale = true;
    const final = code === TOKEN_EXPIRED_CODE && this.#getToken === null;
    if (NO_RECONNECT_CODES.includes(code) || final) {
      this.#running = false;
      this.#listen(false);
      this.#rejectJoins(`closed by the server (${code} ${reason})`);
      this.#emit("close", { code, reason, reconnect: false });
      this.#setState("closed", { code, reason, reconnectInMs: null });
      return;
    }
    if (wasStable) this.#attempt = 0;
    let envelope = backoffEnvelope(this.#options, this.#attempt);
    // The server is going away and asked to be left alone for a while.
    if (code === 1001) envelope = Math.max(envelope, this.#options.shutdownDelayMs);
    let delay = this.#random() * envelope;
    this.#attempt += 1;
    if (code === 1008) delay += this.#options.policyDelayMs;
    this.#emit("close", { code, reason, reconnect: true });
    this.#setState("closed", { code, reason, reconnectInMs: delay });
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs: delay });
    this.#retryTimer = this.#setTimeout(() => this.#open(), delay);
  }

  // --- page lifecycle -----------------------------------------------------

  #hidden() {
    return this.#visibility?.visibilityState === "hidden";
  }

  #onVisibility = () => {
    if (this.#hidden()) {
      this.#hiddenSpell = true;
      return;
    }
    this.#wake();
  };

  #onOnline = () => this.#wake();

  // Visible again, or back online: whatever happened meanwhile, find out now.
  #wake() {
    if (!this.#running) return;
    if (this.#retryTimer !== null) {
      this.#clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#emit("reconnecting", { attempt: this.#attempt, delayMs: 0 });
      return this.#open();
    }
    if (this.#isOpen()) this.#probeNow();
  }

  #listen(on) {
    if (on === this.#listening) return;
    this.#listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    this.#visibility?.[method]?.("visibilitychange", this.#onVisibility);
    this.#network?.[method]?.("online", this.#onOnline);
  }

  // Joins still waiting for a connection that will not come; the channels
  // stay registered and are joined if `connect()` is called again.
  #rejectJoins(why) {
    for (const entry of this.#channels.values()) {
      for (const waiter of entry.waiters.splice(0)) waiter.reject(new VigilError("closed", why));
    }
  }

  #cancelTimers() {
    if (this.#retryTimer !== null) this.#clearTimeout(this.#retryTimer);
    if (this.#watchTimer !== null) this.#clearTimeout(this.#watchTimer);
    if (this.#refreshTimer !== null) this.#clearTimeout(this.#refreshTimer);
    this.#retryTimer = this.#watchTimer = this.#refreshTimer = null;
  }

  // --- token refresh ------------------------------------------------------

  // Arms the in-band refresh of the current token ahead of its `exp`.
  #scheduleRefresh() {
    if (this.#refreshTimer !== null) this.#clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const exp = this.#getToken === null || this.#token === null ? null : tokenExpiry(this.#token);
    if (exp === null) return;
    const remaining = exp * 1000 - this.#wallClock();
    // Too late to help: the server closes with 4003 and the reconnect asks
    // for a new token.
    if (remaining < 1000) return;
    const delay = remaining - Math.min(this.#options.refreshAheadMs, remaining / 2);
    this.#refreshTimer = this.#setTimeout(() => this.#refresh(), delay);
  }

  #refresh() {
    this.#refreshTimer = null;
    const ws = this.#ws;
    this.#fetchToken()
      .then((token) => {
        if (this.#ws !== ws || !this.#isOpen()) return null;
        return this.#request({ op: "refresh", token }).then((reply) => {
          this.#token = token;
          for (const channel of reply.left ?? []) {
            const why = `the new token does not allow ${channel}`;
            this.#dropChannel(channel, new VigilError("forbidden_channel", why));
          }
          this.#emit("token", { validUntil: reply.valid_until ?? null, left: reply.left ?? [] });
        });
      })
      .catch((error) => {
        if (error?.code === "disconnected") return;
        this.#emit("error", {
          code: error?.code ?? "token_unavailable",
          message: error?.message ?? String(error),
          id: null,
        });
      })
      .finally(() => {
        if (this.#ws === ws && this.#isOpen()) this.#scheduleRefresh();
      });
  }

  // Forgets a channel (left, or left by the server because a refreshed
  // token no longer allows it): it is not re-joined, its joins still
  // waiting are rejected with `error`, and its members are shown leaving.
  #dropChannel(channel, error) {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    this.#channels.delete(channel);
    // The server drops a will whose channel its author leaves.
    if (this.#will !== null && this.#will.channel === channel) this.#will = null;
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this.#emit("presence", {
      channel,
      version: entry.version,
      joins: [],
      leaves: [...entry.members.keys()],
      members: new Map(),
      snapshot: false,
      left: true,
    });
  }

  // --- watchdog -----------------------------------------------------------

  #schedule(delay) {
    if (this.#watchTimer !== null) this.#clearTimeout(this.#watchTimer);
    this.#watchDueAt = this.#now() + Math.max(0, delay);
    this.#watchTimer = this.#setTimeout(() => this.#onWatchdog(), Math.max(0, delay));
  }

  // One timer, re-armed from the clock when it fires rather than reset on
  // every message (the deadlines derive from `#lastReceived`, set by the
  // network callbacks); a late timer (a throttled background tab) sends its
  // probe before judging, so lateness alone never kills a healthy
  // connection.
  #onWatchdog() {
    this.#watchTimer = null;
    if (this.#ws === null) return;
    const now = this.#now();
    const late = this.#watchDueAt !== null && now - this.#watchDueAt > this.#options.slackMs;
    if (this.#welcome === null) {
      const deadline = this.#startedAt + this.#options.connectTimeoutMs;
      if (now >= deadline) {
        return this.#lost(CLIENT_TIMEOUT_CODE, "no welcome from the server in time");
      }
      return this.#schedule(deadline - now);
    }
    const { interval_ms: interval, timeout_ms: timeout } = this.#welcome.heartbeat;
    const probeAt = this.#lastReceived + interval;
    if (now < probeAt) return this.#schedule(probeAt - now);
    if (!this.#probing()) return this.#probeNow();
    const deadAt = this.#probeSentAt + timeout + this.#options.slackMs;
    if (now < deadAt) return this.#schedule(deadAt - now);
    // The verdict is due, but this page was throttled or hidden meanwhile:
    // what the server sent may still be queued behind this timer. One more
    // probe, one more timeout, then the verdict stands.
    if ((late || this.#hiddenSpell) && !this.#extended) {
      this.#extended = true;
      return this.#probeNow();
    }
    const silent = Math.round(now - this.#lastReceived);
    this.#lost(CLIENT_TIMEOUT_CODE, `heartbeat timeout: the server was silent for ${silent} ms`);
  }

  // Whether a probe is out and nothing arrived since (a message in the same
  // instant cannot be its answer).
  #probing() {
    return this.#probeSentAt !== null && this.#probeSentAt >= this.#lastReceived;
  }

  // Sends a probe the server answers with a pong, and waits timeout + slack
  // for anything at all. A probe sent while another is unanswered keeps the
  // first one's deadline (pinging often must not postpone the verdict),
  // unless the watchdog itself grants the extension.
  #probeNow() {
    const now = this.#now();
    this.#seq += 1;
    this.#probes.set(this.#seq, { sentAt: now, waiters: [] });
    this.#send(JSON.stringify({ op: "ping", id: this.#seq }));
    if (this.#probing() && this.#watchTimer !== null) return;
    this.#probeSentAt = now;
    const timeout = (this.#welcome?.heartbeat ?? FALLBACK_HEARTBEAT).timeout_ms;
    this.#schedule(timeout + this.#options.slackMs);
  }

  #onPong(id) {
    const probe = this.#probes.get(id);
    if (!probe) return;
    this.#probes.delete(id);
    const rttMs = this.#now() - probe.sentAt;
    for (const waiter of probe.waiters) waiter.resolve(rttMs);
    this.#emit("rtt", { rttMs });
  }

  // --- input --------------------------------------------------------------

  #send(text) {
    try {
      this.#ws.send(text);
    } catch {
      // Not open after all: the close event follows and decides.
    }
  }

  #request(body) {
    if (!this.#isOpen()) {
      return Promise.reject(new VigilError("not_connected", "not connected to the server"));
    }
    this.#seq += 1;
    const id = this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#send(JSON.stringify({ ...body, id }));
    });
  }

  #onMessage(data) {
    // The first message after a probe answers it: the next probe is due an
    // interval from now, not when the timeout would have been.
    const answered = this.#probing();
    this.#lastReceived = this.#now();
    this.#hiddenSpell = this.#hidden();
    this.#extended = false;
    if (answered) {
      this.#probeSentAt = null;
      if (this.#welcome !== null) this.#schedule(this.#welcome.heartbeat.interval_ms);
    }
    if (typeof data !== "string") return; // binary frames are not in the protocol
    const ping = PING_TEXT.exec(data);
    if (ping) return this.#send(`{"type":"pong","id":${ping[1]}}`);
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      const message = "the server sent invalid JSON";
      return this.#emit("error", { code: "malformed_event", message, id: null });
    }
    if (msg === null || typeof msg !== "object") return;
    switch (msg.type) {
      case "welcome":
        return this.#onWelcome(msg);
      case "ping":
        // Not in the exact form above; answer with the id as parsed.
        return this.#send(JSON.stringify({ type: "pong", id: msg.id ?? 0 }));
      case "pong":
        return this.#onPong(msg.id);
      case "presence":
        return this.#onPresence(msg);
      case "presence_count":
        return this.#onCount(msg);
      case "message":
        return this.#onChannelMessage(msg);
      case "reply":
        return this.#settle(msg.id, (p) => p.resolve(msg));
      case "error": {
        const error = new VigilError(msg.code, msg.message, msg.id ?? null);
        if (this.#settle(msg.id, (p) => p.reject(error))) return;
        return this.#emit("error", { code: msg.code, message: msg.message, id: msg.id ?? null });
      }
      default:
        return; // newer servers may say more: ignore what we do not know
    }
  }

  #settle(id, action) {
    const pending = this.#pending.get(id);
    if (!pending) return false;
    this.#pending.delete(id);
    action(pending);
    return true;
  }

  #onWelcome(msg) {
    const hb = msg.heartbeat ?? {};
    this.#welcome = {
      connection: msg.connection,
      user: msg.user,
      version: msg.version,
      heartbeat: {
        interval_ms: positive(hb.interval_ms, FALLBACK_HEARTBEAT.interval_ms),
        timeout_ms: positive(hb.timeout_ms, FALLBACK_HEARTBEAT.timeout_ms),
        mode: hb.mode === "app" ? "app" : "protocol",
      },
    };
    this.#openedAt = this.#now();
    this.#setState("open", { code: null, reason: "", reconnectInMs: null });
    this.#emit("open", this.#welcome);
    this.#emit("welcome", this.#welcome);
    this.#schedule(this.#welcome.heartbeat.interval_ms);
    this.#scheduleRefresh();
    // Resume: the server forgot this client's channels and will with the
    // old connection.
    for (const [channel, entry] of this.#channels) this.#sendJoin(channel, entry, true);
    if (this.#will !== null) {
      this.#request({ op: "set_will", ...this.#will }).catch((error) => {
        if (error.code !== "disconnected") this.#emitError(error);
      });
    }
  }

  // `resume`: a re-join after a reconnect, which names the last message
  // received (a join on an open connection missed nothing).
  #sendJoin(channel, entry, resume) {
    const body = { op: "join", channel };
    if (entry.meta != null) body.meta = entry.meta;
    const since = resume ? entry.position : null;
    if (since !== null) body.since = since;
    this.#request(body).then(
      (reply) => {
        if (this.#channels.get(channel) !== entry) return; // left meanwhile
        this.#onJoinHistory(channel, entry, since, reply);
        this.#applySnapshot(channel, entry, reply.presence, true);
        const members = new Map(entry.members);
        for (const waiter of entry.waiters.splice(0)) waiter.resolve(members);
      },
      (error) => {
        // Lost with the connection: the next welcome joins again.
        if (error.code === "disconnected") return;
        if (this.#channels.get(channel) !== entry) return;
        if (PERMANENT_JOIN_ERRORS.has(error.code)) this.#channels.delete(channel);
        const waiters = entry.waiters.splice(0);
        for (const waiter of waiters) waiter.reject(error);
        if (waiters.length === 0) this.#emitError(error);
      },
    );
  }

  // --- history ------------------------------------------------------------

  // A join's reply: without `since` (or when the missed messages are lost)
  // the channel's position now is where this client starts; with a
  // complete recovery the missed messages follow and move it on.
  #onJoinHistory(channel, entry, since, reply) {
    const history = reply.history ?? null;
    if (since !== null) {
      const recovered = reply.recovered === true;
      this.#emit("recovery", {
        channel,
        recovered,
        missed: recovered ? (reply.missed ?? 0) : null,
        reason: recovered ? null : (reply.recovery ?? "unknown"),
      });
      if (recovered) return;
    }
    if (history === null) return;
    // Never backwards: messages of this epoch may have been handled
    // before this reply's callback ran.
    const at = entry.position;
    if (at && at.epoch === history.epoch && at.offset >= history.offset) return;
    entry.position = { offset: history.offset, epoch: history.epoch };
  }

  #onChannelMessage(msg) {
    const detail = {
      channel: msg.channel,
      from: msg.from ?? null,
      data: msg.data ?? null,
      will: msg.will === true,
    };
    const entry = this.#channels.get(msg.channel);
    if (typeof msg.offset === "number" && typeof msg.epoch === "string") {
      const at = entry?.position;
      // Never twice: an offset at or before the last one of its epoch.
      if (at && at.epoch === msg.epoch && msg.offset <= at.offset) return;
      if (entry) entry.position = { offset: msg.offset, epoch: msg.epoch };
      detail.offset = msg.offset;
      detail.epoch = msg.epoch;
    }
    this.#emit("message", detail);
  }

  #emitError(error) {
    const { code = "error", message, id = null } = error;
    this.#emit("error", { code, message, id });
  }

  // --- presence -----------------------------------------------------------

  #onPresence(diff) {
    const entry = this.#channels.get(diff.channel);
    if (!entry) return;
    // Until this connection's snapshot arrives, diffs wait: those it already
    // contains are then dropped by the version check.
    if (!entry.synced) return void entry.buffer.push(diff);
    this.#applyDiff(diff.channel, entry, diff);
  }

  // A counted channel's numbers: from a join reply, a presence answer or a
  // presence_count event, newest version first.
  #onCount(counts) {
    const entry = this.#channels.get(counts.channel);
    if (!entry || !(counts.version >= (entry.countVersion ?? 0))) return;
    entry.countVersion = counts.version;
    entry.synced = true;
    entry.buffer.length = 0; // list diffs stopped: the channel is counted
    this.#emit("count", {
      channel: counts.channel,
      version: counts.version,
      users: counts.users,
      connections: counts.connections,
      pages: counts.pages ?? true,
    });
  }

  #applyDiff(channel, entry, diff) {
    if (!(diff.version > entry.version)) return;
    entry.version = diff.version;
    const leaves = diff.leaves ?? [];
    const joins = diff.joins ?? [];
    for (const user of leaves) entry.members.delete(user);
    for (const { user, meta } of joins) entry.members.set(user, meta ?? null);
    this.#emitPresence(channel, entry, joins, leaves, false);
  }

  // A join reply (`fresh`: it replaces the map whatever its version, since a
  // new server counts versions anew) or a newer presence query result.
  #applySnapshot(channel, entry, snapshot, fresh) {
    if (snapshot?.mode === "counts") {
      if (fresh) entry.countVersion = 0;
      return this.#onCount(snapshot);
    }
    if (!snapshot || !Array.isArray(snapshot.members)) return;
    if (!fresh && !(snapshot.version > entry.version)) return;
    const next = new Map(snapshot.members.map((m) => [m.user, m.meta ?? null]));
    const joins = [];
    for (const [user, meta] of next) {
      const had = entry.members.has(user);
      if (!had || JSON.stringify(entry.members.get(user)) !== JSON.stringify(meta)) {
        joins.push({ user, meta });
      }
    }
    const leaves = [...entry.members.keys()].filter((user) => !next.has(user));
    entry.members = next;
    entry.version = snapshot.version;
    entry.synced = true;
    this.#emitPresence(channel, entry, joins, leaves, true);
    for (const diff of entry.buffer.splice(0)) this.#applyDiff(channel, entry, diff);
  }

  #emitPresence(channel, entry, joins, leaves, snapshot) {
    this.#emit("presence", {
      channel,
      version: entry.version,
      joins,
      leaves,
      members: new Map(entry.members),
      snapshot,
      left: false,
    });
  }

  // --- output -------------------------------------------------------------

  #setState(state, detail) {
    this.#state = state;
    this.#emit("state", { state, ...detail });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

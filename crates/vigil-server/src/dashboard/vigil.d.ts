// TypeScript declarations of vigil.js, the browser client of the vigil
// server (served at /vigil.d.ts; docs/PROTOCOL.md describes the protocol).
//
//   import { VigilClient } from "/vigil.js";
//   const client = new VigilClient();
//   client.addEventListener("presence", (e) => render(e.detail.members));

/** Any JSON value: channel metadata, message data. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Close codes after which the client stays closed (PROTOCOL.md). */
export declare const NO_RECONNECT_CODES: readonly number[];

/** The close code the client sends when it gives up on a silent server. */
export declare const CLIENT_TIMEOUT_CODE: 4000;

/** The close code of a connection whose token expired. */
export declare const TOKEN_EXPIRED_CODE: 4003;

/** A JWT's `exp` (seconds since the epoch), or null if it has none. */
export declare function tokenExpiry(token: string): number | null;

/** Reconnect and watchdog numbers, in milliseconds. */
export interface Timings {
  /** The first retry waits uniform [0, initialMaxMs). */
  initialMaxMs: number;
  /** Retry n (n >= 1) waits uniform [0, min(capMs, baseMs * factor^(n-1))). */
  baseMs: number;
  factor: number;
  capMs: number;
  /** A connection up this long starts the backoff over. */
  stableAfterMs: number;
  /** Added to the delay after close 1008 (policy). */
  policyDelayMs: number;
  /** Given up when no welcome arrives within this. */
  connectTimeoutMs: number;
  /** Added to the server's timeout before it is declared dead. */
  slackMs: number;
  /** After 1001 (server shutting down) the delay is at least uniform [0, shutdownDelayMs). */
  shutdownDelayMs: number;
  /** With `getToken`, a token is refreshed this long before its `exp` (at most half its remaining life early). */
  refreshAheadMs: number;
  /** The heartbeat mode asked for in the default URL. */
  heartbeat: "app" | "protocol";
}

export declare const DEFAULTS: Readonly<Timings>;

/** The exclusive upper bound of the delay of retry `attempt` (0-based). */
export declare function backoffEnvelope(options: Timings, attempt: number): number;

export interface ClientOptions extends Partial<Timings> {
  /** Default: ws(s)://<page host>/ws?heartbeat=app */
  url?: string;
  /** A JWT, sent as the subprotocol `bearer.<token>`. */
  token?: string | null;
  /**
   * A fresh JWT for the same user: called before every reconnect, and ahead
   * of the current token's `exp` to refresh it in-band (no reconnect).
   */
  getToken?: () => Promise<string> | string;
  // Test doubles.
  WebSocket?: typeof WebSocket;
  now?: () => number;
  /** Default `Date.now` (compared with tokens' `exp`). */
  wallClock?: () => number;
  random?: () => number;
  setTimeout?: (f: () => void, ms: number) => unknown;
  clearTimeout?: (timer: unknown) => void;
  /** Default `document`. */
  visibility?: EventTarget & { visibilityState: string };
  /** Default the global object (`online` events). */
  network?: EventTarget;
}

/** The server's first message. */
export interface Welcome {
  connection: number;
  user: string;
  version: string;
  heartbeat: { interval_ms: number; timeout_ms: number; mode: "app" | "protocol" };
}

export interface PresenceDetail {
  channel: string;
  version: number;
  joins: { user: string; meta: Json }[];
  leaves: string[];
  /** The channel's members after this change: user -> meta. */
  members: Map<string, Json>;
  /** From a join reply or presence query rather than a diff. */
  snapshot: boolean;
  /** This client left the channel. */
  left: boolean;
}

export interface CountDetail {
  channel: string;
  version: number;
  users: number;
  connections: number;
  /** Whether the list may be read with presencePages. */
  pages: boolean;
}

export interface MessageDetail {
  channel: string;
  /** The sender's user id; null from the HTTP API. */
  from: string | null;
  data: Json;
  /** A last will, published because its connection ended abnormally. */
  will: boolean;
  /** In a channel with history: the message's offset (each once, in order) and the channel's epoch. */
  offset?: number;
  epoch?: string;
}

export interface RecoveryDetail {
  channel: string;
  /** Whether every message missed while disconnected was delivered. */
  recovered: boolean;
  /** How many were, when recovered. */
  missed: number | null;
  /** Why not, when not recovered: "epoch_changed", "too_old", "ahead", "history_off", "cluster". */
  reason: string | null;
}

export interface CloseDetail {
  /** The close code; 4000 when this client gave up on a silent server. */
  code: number | null;
  reason: string;
  /** Whether the client will reconnect (a `reconnecting` event follows). */
  reconnect: boolean;
}

export interface StateDetail {
  state: "connecting" | "open" | "closed";
  code: number | null;
  reason: string;
  reconnectInMs: number | null;
}

export interface VigilEventMap {
  open: CustomEvent<Welcome>;
  welcome: CustomEvent<Welcome>;
  close: CustomEvent<CloseDetail>;
  reconnecting: CustomEvent<{ attempt: number; delayMs: number }>;
  rtt: CustomEvent<{ rttMs: number }>;
  presence: CustomEvent<PresenceDetail>;
  /** A counted channel's numbers (a "counts" namespace, or past its presence_cap). */
  count: CustomEvent<CountDetail>;
  message: CustomEvent<MessageDetail>;
  /** A re-join after a reconnect asked for the messages missed meanwhile. */
  recovery: CustomEvent<RecoveryDetail>;
  error: CustomEvent<{ code: string; message: string; id: Json }>;
  state: CustomEvent<StateDetail>;
  /** A token refreshed in-band: until when it is valid (seconds since the epoch), and the channels it no longer allows (left). */
  token: CustomEvent<{ validUntil: number | null; left: string[] }>;
}

/** A request the server refused (`code` from PROTOCOL.md) or that was lost. */
export declare class VigilError extends Error {
  constructor(code: string, message: string, id?: Json);
  code: string;
  id: Json;
}

export declare class VigilClient extends EventTarget {
  constructor(options?: ClientOptions);
  readonly state: "connecting" | "open" | "closed";
  /** The welcome of the current (or last) connection. */
  readonly welcome: Welcome | null;
  /** The channels this client keeps joined. */
  readonly channels: string[];
  /** A copy of the local member map of a joined channel. */
  members(channel: string): Map<string, Json>;
  /** Starts connecting; reconnects until close() or a final close code. */
  connect(): void;
  /** Uses `token` from now on and reconnects at once with it. */
  setToken(token: string | null): void;
  /** Closes for good (1000); pending requests and joins are rejected. */
  close(): void;
  /** The round trip to the server now, in milliseconds. */
  ping(): Promise<number>;
  /** Joins now and after every reconnect; resolves with the members. */
  join(channel: string, meta?: Json): Promise<Map<string, Json>>;
  leave(channel: string): Promise<void>;
  /** Resolves with the number of members the message was delivered to. */
  publish(channel: string, data: Json): Promise<number>;
  /** A counted channel answers `members: null` and its `counts`. */
  presence(channel: string): Promise<{
    channel: string;
    version: number;
    members: Map<string, Json> | null;
    counts?: { users: number; connections: number; pages: boolean };
  }>;
  /** Users and connections in `channel`, without the list. */
  presenceStats(channel: string): Promise<{ channel: string; version: number; users: number; connections: number }>;
  /** The members page by page, in user order; `limit` 1 to 1000 (default 1000). */
  presencePages(
    channel: string,
    options?: { limit?: number },
  ): AsyncGenerator<{ channel: string; version: number; members: Map<string, Json> }, void, undefined>;
  /** Published to `channel` if this connection ends abnormally; null clears. */
  setWill(channel: string, data: Json): Promise<void>;

  addEventListener<K extends keyof VigilEventMap>(
    type: K,
    listener: (event: VigilEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof VigilEventMap>(
    type: K,
    listener: (event: VigilEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

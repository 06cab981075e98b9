// Compiled with `tsc --noEmit --strict` by the browser suite: vigil.d.ts
// must describe vigil.js the way an application uses it. Each
// `@ts-expect-error` line must fail to compile, or tsc reports it unused.
import {
  VigilClient,
  VigilError,
  DEFAULTS,
  NO_RECONNECT_CODES,
  TOKEN_EXPIRED_CODE,
  backoffEnvelope,
  tokenExpiry,
} from "./vigil.js";
import type { Json, PresenceDetail, Welcome } from "./vigil.js";

const client = new VigilClient({ token: "jwt", capMs: 60_000, heartbeat: "app" });
client.addEventListener("open", (e) => {
  const welcome: Welcome = e.detail;
  const interval: number = welcome.heartbeat.interval_ms;
  console.log(welcome.user, interval);
});
client.addEventListener("close", (e) => console.log(e.detail.code, e.detail.reason, e.detail.reconnect));
client.addEventListener("reconnecting", (e) => console.log(e.detail.attempt, e.detail.delayMs));
client.addEventListener("rtt", (e) => console.log(e.detail.rttMs.toFixed(1)));
client.addEventListener("presence", (e) => {
  const detail: PresenceDetail = e.detail;
  for (const [user, meta] of detail.members) console.log(user.toUpperCase(), meta);
});
client.addEventListener("count", (e) => console.log(e.detail.users, e.detail.connections, e.detail.pages));
client.addEventListener("message", (e) => console.log(e.detail.from ?? "api", e.detail.will, e.detail.offset ?? 0, e.detail.epoch ?? ""));
client.addEventListener("recovery", (e) => {
  const lost: boolean = !e.detail.recovered;
  console.log(e.detail.channel, lost, e.detail.missed ?? 0, e.detail.reason ?? "");
});
client.connect();

const refreshing = new VigilClient({
  getToken: async () => (await fetch("/token")).text(),
  refreshAheadMs: 60_000,
});
refreshing.addEventListener("token", (e) => console.log(e.detail.validUntil ?? 0, e.detail.left.join()));
const exp: number | null = tokenExpiry("a.b.c");
const expiredCode: 4003 = TOKEN_EXPIRED_CODE;
console.log(exp, expiredCode);
// @ts-expect-error getToken returns a token, not a number
new VigilClient({ getToken: async () => 42 });

async function use(): Promise<void> {
  const members: Map<string, Json> = await client.join("room-1", { name: "Ann" });
  const delivered: number = await client.publish("room-1", { text: "hi", n: [1, 2] });
  const rtt: number = await client.ping();
  await client.setWill("room-1", null);
  await client.leave("room-1");
  const stats = await client.presenceStats("room-1");
  const counted: number = stats.users + stats.connections;
  for await (const page of client.presencePages("room-1", { limit: 100 })) {
    console.log(page.version, page.members.size, counted);
  }
  const state: "connecting" | "open" | "closed" = client.state;
  console.log(members.size, delivered, rtt, state, client.channels.length);
  try {
    await client.presence("room-1");
  } catch (error) {
    if (error instanceof VigilError) console.log(error.code);
  }
  console.log(DEFAULTS.capMs, NO_RECONNECT_CODES.includes(1000), backoffEnvelope(DEFAULTS, 3));
  // @ts-expect-error: channels are strings
  await client.join(42);
  // @ts-expect-error: meta must be JSON
  await client.join("room-1", { at: new Date() });
  // @ts-expect-error: rtt carries rttMs
  client.addEventListener("rtt", (e) => console.log(e.detail.ms));
}
void use;

// The dashboard and vigil.js in a real Chromium, against the real `vigil`
// with short heartbeats (1 s interval, 1 s timeout, 3 s leave grace). Run by
// `cargo xtask test` (suite `browser`), which installs Chromium and
// playwright-core and sets:
//   VIGIL_BIN        the vigil binary
//   CHROMIUM         the browser (default /usr/bin/chromium)
//   VIGIL_ARTIFACTS  where screenshots go (default ./artifacts)
//
// Every wait is for a behaviour, with a generous bound; nothing asserts a
// duration.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate, createHash, createHmac } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const VIGIL_BIN = process.env.VIGIL_BIN;
const ARTIFACTS = process.env.VIGIL_ARTIFACTS ?? join(HERE, "artifacts");
const LEAVE_GRACE_MS = 3000;
/** How long anything the tests wait for may take on a loaded machine. */
const PATIENCE_MS = 30_000;
const FLAGS = [
  // The test pages under /test/ are answered by playwright, not the server,
  // so Chromium cannot tell they come from loopback and would refuse their
  // WebSocket to it as a "local network" request.
  "--disable-features=LocalNetworkAccessChecks",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

assert.ok(VIGIL_BIN, "set VIGIL_BIN to the vigil binary (cargo xtask test does)");
mkdirSync(ARTIFACTS, { recursive: true });

// --- the server -----------------------------------------------------------

/** A `vigil` process on loopback; `port` 0 picks a free one. */
class Server {
  static async start(port = 0, extra = []) {
    const args = ["--listen", `127.0.0.1:${port}`, "--heartbeat-interval", "1s",
      "--heartbeat-timeout", "1s", "--leave-grace", `${LEAVE_GRACE_MS / 1000}s`, ...extra];
    const child = spawn(VIGIL_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
    const server = new Server(child);
    let buffered = "";
    const ready = new Promise((resolve, reject) => {
      child.on("exit", (code, signal) => reject(new Error(`vigil exited (${code ?? signal}):\n${server.log.join("\n")}`)));
      child.stderr.setEncoding("utf8").on("data", (chunk) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop();
        for (const line of lines) {
          server.log.push(line);
          server.secret ??= /development_secret=([0-9a-f]+)/.exec(line)?.[1] ?? null;
          const address = /address=(\S+)/.exec(line)?.[1];
          if (address) resolve(address);
        }
      });
    });
    server.address = await ready;
    assert.ok(server.secret, "vigil printed its development secret");
    child.removeAllListeners("exit");
    server.exited = new Promise((resolve) => child.on("exit", resolve));
    return server;
  }

  constructor(child) {
    this.child = child;
    this.log = [];
    this.secret = null;
  }

  get port() {
    return Number(this.address.split(":").at(-1));
  }

  get base() {
    return `http://${this.address}`;
  }

  /** An HS256 token for `sub` valid `seconds`, accepted by this run of the server. */
  token(sub, seconds = 3600) {
    const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + seconds })}`;
    return `${unsigned}.${createHmac("sha256", this.secret).update(unsigned).digest("base64url")}`;
  }

  async overview() {
    const response = await fetch(`${this.base}/api/overview`);
    assert.equal(response.status, 200, "the overview is open on an anonymous server");
    return response.json();
  }

  /** The members of `channel` in the overview: user -> member. */
  async members(channel) {
    const found = (await this.overview()).channels.find((c) => c.channel === channel);
    return new Map((found?.members ?? []).map((m) => [m.user, m]));
  }

  async stop(signal = "SIGTERM") {
    this.child.kill(signal);
    await this.exited;
  }
}

/** Polls `check` until it returns a truthy value, which it returns. */
async function eventually(what, check, timeoutMs = PATIENCE_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the browser ----------------------------------------------------------

// A test page at the server's origin (same origin: the default URL of
// vigil.js, the CSP): `#token=...&channel=...&meta=...`. It records every
// client event in `window.events`.
const TAB_HTML = `<!doctype html><meta charset="utf-8"><title>tab</title>
<script type="module">
import { VigilClient } from "/vigil.js";
const params = new URLSearchParams(location.hash.slice(1));
// With \`refresh\`, tokens come from the test (\`window.freshToken\`).
const getToken = params.has("refresh") ? () => window.freshToken() : undefined;
const client = new VigilClient({ token: params.get("token"), getToken });
window.events = [];
for (const type of ["open", "close", "reconnecting", "rtt", "presence", "count", "token", "error", "message", "recovery"]) {
  client.addEventListener(type, ({ detail }) => {
    const copy = type === "presence" ? { channel: detail.channel, joins: detail.joins, leaves: detail.leaves } : detail;
    window.events.push({ type, detail: copy });
  });
}
client.connect();
client.join(params.get("channel"), JSON.parse(params.get("meta")));
window.client = client;
</script>`;

const SNIPPET = readFileSync(join(HERE, "snippet.html"), "utf8");

let server;
let browser;
let context;
const children = [];

before(async () => {
  server = await Server.start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.route("**/test/tab.html", (route) => route.fulfill({ contentType: "text/html", body: TAB_HTML }));
  await context.route("**/test/snippet.html", (route) =>
    route.fulfill({ contentType: "text/html", body: `<!doctype html><meta charset="utf-8">\n${SNIPPET}` }),
  );
});

after(async () => {
  for (const child of children) child.kill("SIGKILL");
  await browser?.close();
  await server?.stop("SIGKILL");
});

async function tab(user, channel, meta) {
  const page = await context.newPage();
  const hash = new URLSearchParams({ token: server.token(user), channel, meta: JSON.stringify(meta) });
  await page.goto(`${server.base}/test/tab.html#${hash}`);
  await eventually(`${user} is connected`, () => page.evaluate(() => window.events?.some((e) => e.type === "open")));
  return page;
}

const events = (page, type) => page.evaluate((type) => window.events.filter((e) => e.type === type), type);

/** A tab whose WebSockets the test can reach (`window.sockets`), to drop one. */
async function tabWithSockets(user, channel, meta) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.sockets.push(this);
      }
    };
  });
  const hash = new URLSearchParams({ token: server.token(user), channel, meta: JSON.stringify(meta) });
  await page.goto(`${server.base}/test/tab.html#${hash}`);
  await eventually(`${user} is connected`, () => page.evaluate(() => window.events?.some((e) => e.type === "open")));
  return page;
}

async function dashboard() {
  const page = await context.newPage();
  await page.goto(server.base + "/");
  await eventually("the dashboard connects", async () => (await page.textContent("#state")) === "open");
  return page;
}

const logText = (page) => page.textContent("#log");

// --- the scenarios ----------------------------------------------------------

test("the README's snippet connects, joins, sees itself and its message", async () => {
  const page = await context.newPage();
  const lines = [];
  page.on("console", (message) => lines.push(message.text()));
  page.on("pageerror", (error) => lines.push(`page error: ${error.message}`));
  await page.goto(`${server.base}/test/snippet.html`);
  const user = await eventually("connected", () => lines.map((l) => /^connected as (\S+)$/.exec(l)?.[1]).find(Boolean));
  await eventually("its presence", () => lines.some((l) => l.startsWith("online in lobby:") && l.includes(user)));
  await eventually("its message", () => lines.includes(`message from ${user}: {"text":"hello"}`));
  assert.deepEqual(lines.filter((l) => l.startsWith("page error")), []);
  await page.close();
});

test("a client that falls silent appears, disappears after the bound, and the log shows both", async () => {
  const page = await dashboard();
  const ann = await tab("ann", "lobby", { name: "Ann", role: "editor" });
  const bob = await tab("bob", "ops", { name: "Bob" });
  const timeoutsBefore = (await server.overview()).counters.closed.heartbeat_timeout;

  const child = spawn(process.execPath, ["--experimental-websocket", join(HERE, "silent-client.mjs"),
    `ws://${server.address}/ws`, "lobby", JSON.stringify({ name: "Silent Sam" })], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
  const user = await eventually("the silent client joined", () => /joined (\S+)/.exec(out)?.[1]);

  const row = page.locator(`[data-channel="lobby"] tr[data-user="${user}"]`);
  await eventually("it appears on the dashboard", () => row.count());
  assert.match(await row.textContent(), /online/);
  // The server's pings measure its round trip, shown per connection.
  await eventually("its round trip is shown", async () => / ms · /.test(await row.textContent()));
  await eventually("ann is shown too", () => page.locator('[data-channel="lobby"] tr[data-user="ann"]').count());
  await eventually("bob's channel is shown", () => page.locator('[data-channel="ops"]').count());
  await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

  child.kill("SIGSTOP"); // no close frame, no FIN: silence
  await eventually("it disappears", async () => (await row.count()) === 0);
  const log = await logText(page);
  assert.match(log, new RegExp(`${user} joined lobby`));
  assert.match(log, new RegExp(`${user} left lobby`));
  const counters = (await server.overview()).counters;
  assert.equal(counters.closed.heartbeat_timeout, timeoutsBefore + 1, "dropped for silence");
  child.kill("SIGKILL");
  await Promise.all([page.close(), ann.close(), bob.close()]);
});

test("two pages of one user: closing one keeps the user online, a reload announces no leave", async () => {
  const observer = await tab("olga", "pair", { name: "Olga" });
  const first = await tab("ann", "pair", { name: "Ann" });
  const second = await tab("ann", "pair", { name: "Ann" });
  await eventually("ann online with two connections", async () => (await server.members("pair")).get("ann")?.connections.length === 2);
  const leavesOfAnn = async () => (await events(observer, "presence")).filter((e) => e.detail.leaves.includes("ann"));

  await second.close();
  await eventually("one connection left", async () => (await server.members("pair")).get("ann")?.connections.length === 1);
  await sleep(LEAVE_GRACE_MS + 2000);
  assert.ok((await server.members("pair")).has("ann"), "ann is still online");

  const before = (await server.members("pair")).get("ann").connections[0].id;
  await first.reload();
  await eventually("the reloaded page is connected again", async () => {
    const conns = (await server.members("pair")).get("ann")?.connections ?? [];
    return conns.length === 1 && conns[0].id !== before;
  });
  await sleep(LEAVE_GRACE_MS + 2000);
  assert.deepEqual(await leavesOfAnn(), [], "no leave of ann was announced");

  // The observer does see leaves: closing the last page announces one.
  await first.close();
  await eventually("ann leaves once her last page is gone", async () => (await leavesOfAnn()).length === 1);
  await observer.close();
});

test("in a channel with history a dropped page misses nothing, once, in order, and nobody sees it leave", async () => {
  // The default server keeps the last 100 messages of `demo*` channels.
  const channel = "demo-recovery";
  const publisher = await tab("paul", channel, null);
  const lena = await tabWithSockets("lena", channel, null);
  await eventually("lena is in the channel", async () => (await server.members(channel)).has("lena"));
  const received = async () => (await events(lena, "message")).map((e) => e.detail);
  // Paced under the default publish rate (10 a second).
  const publish = async (n) => {
    await publisher.evaluate((n) => window.client.publish("demo-recovery", n), n);
    await sleep(150);
  };
  for (let n = 0; n < 3; n++) await publish(n);
  await eventually("lena has the first three", async () => (await received()).length === 3);
  // Her connection is closed under her, as a network drop would; 20 more
  // are published while she comes back by herself.
  await lena.evaluate(() => window.sockets.at(-1).close(4000, "dropped by the test"));
  for (let n = 3; n < 23; n++) await publish(n);
  await eventually("lena has all 23", async () => (await received()).length >= 23);
  await sleep(1000);
  const got = await received();
  assert.deepEqual(got.map((m) => m.data), [...Array(23).keys()], "each once, in order");
  const offsets = got.map((m) => m.offset);
  assert.deepEqual(offsets, offsets.map((_, i) => offsets[0] + i), "contiguous offsets");
  const recoveries = (await events(lena, "recovery")).map((e) => e.detail);
  assert.equal(recoveries.length, 1, JSON.stringify(recoveries));
  assert.equal(recoveries[0].recovered, true, JSON.stringify(recoveries));
  await sleep(LEAVE_GRACE_MS + 1000);
  const leaves = (await events(publisher, "presence")).filter((e) => e.detail.leaves.includes("lena"));
  assert.deepEqual(leaves, [], "nobody saw lena leave");
  await lena.close();
  await publisher.close();
});

test("a hidden tab with throttled timers stays connected longer than the timeout", async () => {
  const page = await tab("hilda", "background", { name: "Hilda" });
  const [open] = await events(page, "open");
  const pingsBefore = (await server.members("background")).get("hilda").connections[0].pings_sent;
  await page.evaluate(() => {
    // What a browser does to a background tab: hidden, timers run late.
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    const setTimeoutNow = window.setTimeout;
    window.setTimeoutNow = setTimeoutNow;
    window.setTimeout = (f, ms, ...args) => setTimeoutNow(f, Math.max(ms ?? 0, 60_000), ...args);
    document.dispatchEvent(new Event("visibilitychange"));
  });
  // Interval + timeout is 2 s, the client's own bound 4 s: wait well past.
  await sleep(10_000);
  assert.deepEqual(await events(page, "close"), [], "the client did not give up");
  const hilda = (await server.members("background")).get("hilda");
  assert.equal(hilda?.status, "online");
  assert.equal(hilda.connections[0].id, open.detail.connection, "the same connection");
  assert.ok(hilda.connections[0].pings_sent > pingsBefore, "the server kept the heartbeat going");

  // Visible again: the client probes at once (its timers are still slow).
  const rtts = (await events(page, "rtt")).length;
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await eventually("a probe answered right after becoming visible", async () => (await events(page, "rtt")).length > rtts);
  await page.close();
});

test("short-lived tokens are refreshed in-band: the connection outlives each of them", async () => {
  const page = await context.newPage();
  // Each token lives 6 s (the server adds its 5 s leeway): the client
  // refreshes every 3 s, over the same connection.
  let issued = 0;
  await page.exposeFunction("freshToken", () => {
    issued += 1;
    return server.token("rita", 6);
  });
  const hash = new URLSearchParams({ token: server.token("rita", 6), channel: "tokens", meta: "null", refresh: "1" });
  await page.goto(`${server.base}/test/tab.html#${hash}`);
  await eventually("rita is connected", () => page.evaluate(() => window.events?.some((e) => e.type === "open")));
  const [open] = await events(page, "open");
  await sleep(16_000);
  const errors = await events(page, "error");
  assert.deepEqual(await events(page, "close"), [], `never closed (4003 or otherwise); errors: ${JSON.stringify(errors)}`);
  const refreshed = await events(page, "token");
  assert.ok(refreshed.length >= 3, `refreshed ${refreshed.length} times`);
  assert.ok(issued >= 3, `getToken called ${issued} times`);
  const rita = (await server.members("tokens")).get("rita");
  assert.equal(rita?.connections[0].id, open.detail.connection, "the same connection throughout");
  await page.close();
});

test("a big channel's members page by page, and its counts, through vigil.js", async () => {
  const pages = [];
  for (const user of ["pia", "pol", "pat", "pam"]) pages.push(await tab(user, "paged", { seat: user }));
  const [first] = pages;
  await eventually("all four in the channel", async () =>
    (await first.evaluate(() => window.client.presenceStats("paged"))).users === 4);
  const stats = await first.evaluate(() => window.client.presenceStats("paged"));
  assert.equal(stats.connections, 4);
  const walked = await first.evaluate(async () => {
    const seen = [];
    for await (const page of window.client.presencePages("paged", { limit: 3 })) {
      seen.push([...page.members.entries()].map(([user, meta]) => `${user}:${meta.seat}`));
    }
    return seen;
  });
  assert.deepEqual(walked, [["pam:pam", "pat:pat", "pia:pia"], ["pol:pol"]]);
  const refused = await first.evaluate(() =>
    window.client.presencePages("paged", { limit: 0 }).next().then(() => "ok", (error) => error.code));
  assert.equal(refused, "invalid_page");
  for (const page of pages) await page.close();
});

test("in a counts namespace vigil.js reports numbers, never a list", async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const config = join(ARTIFACTS, "counts.toml");
  writeFileSync(config, '[[namespace]]\nchannels = "live:*"\npresence = "counts"\n');
  const counted = await Server.start(0, ["--config", config]);
  try {
    const open = async (user) => {
      const page = await context.newPage();
      const hash = new URLSearchParams({ token: counted.token(user), channel: "live:show", meta: "null" });
      await page.goto(`${counted.base}/test/tab.html#${hash}`);
      await eventually(`${user} is connected`, () => page.evaluate(() => window.events?.some((e) => e.type === "open")));
      return page;
    };
    const first = await open("cleo");
    const second = await open("cody");
    await eventually("cleo counts two users", async () =>
      (await events(first, "count")).some((e) => e.detail.users === 2 && e.detail.connections === 2));
    const [latest] = (await events(first, "count")).slice(-1);
    assert.equal(latest.detail.channel, "live:show");
    assert.equal(latest.detail.pages, false);
    assert.deepEqual(
      (await events(first, "presence")).filter((e) => e.detail.channel === "live:show"),
      [],
      "no list diffs in a counts channel",
    );
    const asked = await first.evaluate(() => window.client.presence("live:show"));
    assert.equal(asked.members, null);
    assert.equal(asked.counts.users, 2);
    await second.close();
    await first.close();
  } finally {
    await counted.stop("SIGKILL");
  }
});

test("over wss:// (vigil's own TLS) the client connects, heartbeats and sees presence", async () => {
  const certPath = process.env.BROWSER_TLS_CERT;
  assert.ok(certPath, "cargo xtask browser sets BROWSER_TLS_CERT");
  const tlsServer = await Server.start(0, ["--tls-cert", certPath, "--tls-key", process.env.BROWSER_TLS_KEY]);
  // Chromium accepts exactly this certificate's key (a self-signed one
  // made for the run), the way a pinned test CA would be trusted.
  const spki = new X509Certificate(readFileSync(certPath)).publicKey.export({ type: "spki", format: "der" });
  const pin = createHash("sha256").update(spki).digest("base64");
  const tlsBrowser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [...FLAGS, `--ignore-certificate-errors-spki-list=${pin}`],
  });
  try {
    const tlsContext = await tlsBrowser.newContext();
    await tlsContext.route("**/test/tab.html", (route) => route.fulfill({ contentType: "text/html", body: TAB_HTML }));
    const page = await tlsContext.newPage();
    const hash = new URLSearchParams({ token: tlsServer.token("tess"), channel: "secure", meta: "null" });
    await page.goto(`https://localhost:${tlsServer.port}/test/tab.html#${hash}`);
    await eventually("tess is connected over wss", () => page.evaluate(() => window.events?.some((e) => e.type === "open")));
    assert.equal(await page.evaluate(() => location.protocol), "https:");
    const [open] = await events(page, "open");
    assert.equal(open.detail.user, "tess");
    await eventually("tess sees herself in presence", async () =>
      (await events(page, "presence")).some((e) => e.detail.joins.some((j) => j.user === "tess")));
    // The server pings every second and drops a client silent for 2 s:
    // several heartbeats pass over TLS, answered, and nothing closes.
    await sleep(4000);
    assert.deepEqual(await events(page, "close"), [], "never closed");
  } finally {
    await tlsBrowser.close();
    await tlsServer.stop("SIGKILL");
  }
});

test("when the server stops the dashboard shows a banner, then reconnects and re-joins", async () => {
  const page = await dashboard();
  await page.fill("#channel", "watch-room");
  await page.click("#watch-form button");
  const me = async () => (await page.textContent("#me")).split(",")[0];
  const first = await me();
  await eventually("the dashboard joined watch-room", async () => (await server.members("watch-room")).has(first));

  const port = server.port;
  await server.stop("SIGTERM"); // drains with 1001 "reconnect later"
  await eventually("the banner shows", () => page.isVisible("#banner"));
  await eventually("with a countdown", async () => /reconnecting in \d+\.\d s/.test(await page.textContent("#banner")));
  assert.equal(await page.textContent("#state"), "closed");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-server-gone.png") });

  server = await Server.start(port);
  await eventually("connected again", async () => (await page.textContent("#state")) === "open");
  assert.equal(await page.isVisible("#banner"), false);
  const second = await me();
  assert.notEqual(second, first, "a new connection (anonymous users are per connection)");
  const member = await eventually("re-joined watch-room with its meta", async () => (await server.members("watch-room")).get(second));
  assert.deepEqual(member.meta, { role: "dashboard" });
  await page.close();
});

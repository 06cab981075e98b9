//! The dashboard's responses and headers, what its page may load, the
//! client script against docs/PROTOCOL.md (message types, close codes), and,
//! with `node`, a syntax check and a scripted run of the client against a
//! fake WebSocket and a virtual clock.

use super::*;
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROTOCOL_MD: &str = include_str!("../../docs/PROTOCOL.md");

/// The types of server messages the client must handle, whatever the doc
/// says: a floor, so that a broken extraction cannot pass.
const KNOWN_TYPES: &[&str] = &[
    "welcome", "presence", "reply", "message", "error", "ping", "pong",
];

#[track_caller]
fn check(path: &str, content_type: &str, body: &str) {
    let response = page(path).unwrap_or_else(|| panic!("{path} must be served"));
    assert_eq!(response.status(), hyper::StatusCode::OK, "{path}");
    let headers = response.headers();
    let header = |name: header::HeaderName| {
        headers
            .get(&name)
            .unwrap_or_else(|| panic!("{path}: no {name} header"))
            .to_str()
            .expect("the headers are static ASCII")
            .to_owned()
    };
    assert_eq!(header(header::CONTENT_TYPE), content_type, "{path}");
    assert_eq!(header(header::CACHE_CONTROL), "no-cache", "{path}");
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
    let csp = header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.starts_with("default-src 'self'; "), "{path}: {csp}");
    assert!(csp.contains("connect-src 'self' ws: wss:"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(body_of(response), body.as_bytes(), "{path}: the body");
}

fn body_of(response: Response<Full<Bytes>>) -> Bytes {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // A `Full` body is ready at once: one poll, no runtime.
    let mut collect = std::pin::pin!(response.into_body().collect());
    match collect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(collected)) => collected.to_bytes(),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("a Full body is ready at once"),
    }
}

#[test]
fn root_is_the_html_page() {
    check("/", "text/html; charset=utf-8", INDEX_HTML);
}

#[test]
fn client_script_is_javascript() {
    check(
        "/vigil-client.js",
        "text/javascript; charset=utf-8",
        CLIENT_JS,
    );
}

#[test]
fn unknown_paths_are_none() {
    for path in [
        "",
        "/index.html",
        "/ws",
        "/favicon.ico",
        "/vigil-client.js/",
        "/VIGIL-CLIENT.JS",
        "//",
        "/dashboard/index.html",
    ] {
        assert!(page(path).is_none(), "{path:?} must not be served");
    }
}

/// The text of the one element opened by `open` and closed by `</tag>`.
#[track_caller]
fn inline(html: &str, open: &str, tag: &str) -> String {
    let close = format!("</{tag}>");
    assert_eq!(html.matches(&format!("<{tag}")).count(), 1, "one <{tag}>");
    let start = html.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
    let end = start + html[start..].find(&close).expect("closed");
    html[start..end].to_owned()
}

#[test]
fn page_loads_same_origin_resources_only() {
    for (name, text) in [("index.html", INDEX_HTML), ("vigil-client.js", CLIENT_JS)] {
        for scheme in ["http://", "https://"] {
            assert!(!text.contains(scheme), "{name} names {scheme}");
        }
    }
    for scheme in ["=\"//", "data:", "javascript:", "<link", "<iframe", "<img"] {
        assert!(!INDEX_HTML.contains(scheme), "the page uses {scheme}");
    }
    for attribute in [" src=", " href=", " style=", " onclick=", " onload="] {
        assert!(!INDEX_HTML.contains(attribute), "the page uses {attribute}");
    }
    let script = inline(INDEX_HTML, "<script type=\"module\">", "script");
    let imports: Vec<&str> = script
        .lines()
        .filter(|line| line.starts_with("import "))
        .collect();
    assert_eq!(
        imports,
        ["import { VigilClient } from \"./vigil-client.js\";"]
    );
    assert!(!script.contains("innerHTML") && !script.contains("eval("));
}

#[test]
fn csp_hashes_match_the_inline_script_and_style() {
    let script = inline(INDEX_HTML, "<script type=\"module\">", "script");
    let style = inline(INDEX_HTML, "<style>", "style");
    let script = format!("'sha256-{}'", base64(&sha256(script.as_bytes())));
    let style = format!("'sha256-{}'", base64(&sha256(style.as_bytes())));
    let expected = format!("script-src 'self' {script}; style-src 'self' {style};");
    assert!(
        CONTENT_SECURITY_POLICY.contains(&expected),
        "the page's inline script or style changed: put `{expected}` in \
         CONTENT_SECURITY_POLICY\n(it has: {CONTENT_SECURITY_POLICY})"
    );
}

#[test]
fn client_exports_vigil_client() {
    assert!(CLIENT_JS.contains("\nexport class VigilClient extends EventTarget {"));
    assert!(CLIENT_JS.contains("\nexport class VigilError extends Error {"));
    for method in [
        "connect()",
        "close()",
        "join(channel, meta = null)",
        "leave(channel)",
        "publish(channel, data)",
        "presence(channel)",
        "setWill(channel, data)",
    ] {
        assert!(CLIENT_JS.contains(&format!("\n  {method} {{")), "{method}");
    }
}

/// Every `"type":"…"` of the doc's examples and every event it lists.
fn protocol_types() -> Vec<String> {
    let mut types: Vec<String> = PROTOCOL_MD
        .split("\"type\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    let events = PROTOCOL_MD
        .split("## Events")
        .nth(1)
        .expect("PROTOCOL.md has an Events section");
    let events = events.split("\n## ").next().unwrap_or(events);
    types.extend(events.lines().filter_map(|line| {
        let name = line.strip_prefix("- `")?;
        Some(name.split('`').next()?.to_owned())
    }));
    types.sort();
    types.dedup();
    types
}

#[test]
fn client_handles_every_message_type_of_the_protocol() {
    let types = protocol_types();
    for known in KNOWN_TYPES {
        assert!(
            types.iter().any(|t| t == known),
            "{known} not found in {types:?}"
        );
    }
    for kind in &types {
        assert!(
            CLIENT_JS.contains(&format!("case \"{kind}\":")),
            "the client has no `case \"{kind}\":` for a PROTOCOL.md message type"
        );
    }
}

#[test]
fn client_does_not_reconnect_after_the_final_close_codes_of_the_protocol() {
    let table = PROTOCOL_MD
        .split("## Close codes")
        .nth(1)
        .expect("PROTOCOL.md has a Close codes section");
    let mut final_codes: Vec<u16> = table
        .lines()
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // | codes | meaning | reconnect? |
            (cells.len() == 5 && cells[3].starts_with("no")).then(|| cells[1])
        })
        .flat_map(|codes| codes.split('/').map(|c| c.trim().parse().expect("a code")))
        .collect();
    final_codes.sort_unstable();
    for required in [1002, 1007, 1009] {
        assert!(final_codes.contains(&required), "{final_codes:?}");
    }
    let list: Vec<String> = final_codes.iter().map(u16::to_string).collect();
    let expected = format!(
        "export const NO_RECONNECT_CODES = Object.freeze([{}]);",
        list.join(", ")
    );
    assert!(
        CLIENT_JS.contains(&expected),
        "the client must say {expected}"
    );
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vigil-dashboard-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("the temp dir is writable");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The oldest Node.js with everything the scripts use (a global
/// `CustomEvent`, private class members).
const NODE_MAJOR: u32 = 20;

/// Runs `node` with `args` in `dir`; fails (never skips) without node.
#[track_caller]
fn node(dir: &Path, args: &[&str]) -> String {
    let run = |args: &[&str]| match Command::new("node").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`node` is not installed, and these tests need it to check the dashboard's \
             JavaScript: install Node.js {NODE_MAJOR} or newer (`sudo apt-get install nodejs`, \
             or https://nodejs.org)"
        ),
        Err(error) => panic!("cannot run node: {error}"),
    };
    let version = String::from_utf8_lossy(&run(&["--version"]).stdout).into_owned();
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= NODE_MAJOR,
        "node {} is too old: install Node.js {NODE_MAJOR} or newer (https://nodejs.org)",
        version.trim()
    );
    let output = run(args);
    assert!(
        output.status.success(),
        "node {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn client_and_page_scripts_pass_node_check() {
    let scratch = Scratch::new("check");
    scratch.write("vigil-client.mjs", CLIENT_JS);
    let script = inline(INDEX_HTML, "<script type=\"module\">", "script");
    scratch.write("page.mjs", &script);
    node(&scratch.0, &["--check", "vigil-client.mjs"]);
    node(&scratch.0, &["--check", "page.mjs"]);
}

#[test]
fn client_behaves_under_node_with_a_fake_socket_and_clock() {
    let scratch = Scratch::new("run");
    scratch.write("vigil-client.mjs", CLIENT_JS);
    scratch.write("scenario.mjs", SCENARIO);
    let out = node(&scratch.0, &["scenario.mjs"]);
    assert_eq!(out.trim(), "ok", "the scenario ran to its end");
}

// Test-only SHA-256 (FIPS 180-4) and base64, for the CSP hashes.

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_hash_helpers_match_known_vectors() {
    assert_eq!(
        base64(&sha256(b"abc")),
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    assert_eq!(
        base64(&sha256(&[b'a'; 1_000])),
        "Qe3s5C1j6Nm/UVqbppMuHCDLyfWl0TRkWttdsblzfqM="
    );
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}

/// One client's life against a fake server, run by node: connect with a
/// token, join before the welcome, buffered and stale presence diffs,
/// replies and errors, pings answered, probes in both heartbeat modes, a
/// silent server dropped after interval + timeout + slack and not before,
/// backoff steps, resume (re-join with meta, last will), the final close
/// codes, leave and close.
const SCENARIO: &str = r##"// One client's life against a fake server: a virtual clock, fake timers and
// a fake WebSocket. Every step is checked as it happens.
import assert from "node:assert/strict";
import { VigilClient, VigilError, DEFAULTS, backoffEnvelope } from "./vigil-client.mjs";

let now = 0;
let timers = [];
let timerSeq = 0;
const setTimer = (f, ms) => {
  const timer = { at: now + ms, seq: ++timerSeq, f };
  timers.push(timer);
  return timer;
};
const clearTimer = (timer) => {
  timers = timers.filter((t) => t !== timer);
};
function advance(ms) {
  const end = now + ms;
  for (;;) {
    timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const next = timers[0];
    if (!next || next.at > end) break;
    timers.shift();
    now = Math.max(now, next.at);
    next.f();
  }
  now = end;
}
const flush = () => new Promise((resolve) => setImmediate(resolve));

const sockets = [];
class FakeSocket {
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
  welcome(connection, mode = "protocol") {
    const heartbeat = { interval_ms: 20000, timeout_ms: 10000, mode };
    this.deliver({ type: "welcome", connection, user: `anon-${connection}`, heartbeat, version: "0.1.0" });
  }
}

const client = new VigilClient({
  url: "ws://example.test/ws",
  token: "T",
  WebSocket: FakeSocket,
  now: () => now,
  random: () => 0.5,
  setTimeout: setTimer,
  clearTimeout: clearTimer,
});
const events = { state: [], presence: [], message: [], error: [], welcome: [] };
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

// Protocol mode: after an interval of silence the client probes with a
// presence query; an answer keeps the connection.
advance(20000);
assert.deepEqual(ws.last(), { op: "presence", channel: "room-1", id: 6 });
ws.deliver({ type: "reply", id: 6, presence: { channel: "room-1", version: 5, members } });
advance(20000);
assert.deepEqual(ws.last(), { op: "presence", channel: "room-1", id: 7 });
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

// App mode: the probe is a text ping, any answer keeps the connection.
advance(20000);
assert.deepEqual(ws.last(), { type: "ping", id: 11 });
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
// 1001 (server shutting down): back after a random delay; a short-lived
// connection does not reset the sequence.
sockets[3].welcome(4);
sockets[3].serverClose(1001, "restarting");
assert.equal(lastState().reconnectInMs, 0.5 * DEFAULTS.baseMs * DEFAULTS.factor);
advance(lastState().reconnectInMs);
assert.equal(sockets.length, 5);

// 1002, 1007, 1009 (and 1000): closed for good.
sockets[4].welcome(5);
sockets[4].serverClose(1002, "protocol error");
assert.deepEqual(lastState(), { state: "closed", code: 1002, reason: "protocol error", reconnectInMs: null });
advance(10 * DEFAULTS.capMs);
assert.equal(sockets.length, 5);
assert.equal(timers.length, 0);
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
assert.equal(timers.length, 0);

// Full jitter under an exponential envelope with a cap.
const envelopes = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffEnvelope(DEFAULTS, n));
assert.deepEqual(envelopes, [1000, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
console.log("ok");
"##;

//! The dashboard's responses and headers, what its page may load, the
//! client script against docs/PROTOCOL.md (message types, close codes) and
//! its TypeScript declarations, and, with `node`, a syntax check and
//! scripted runs of the client (`tests/*.mjs`) against a fake WebSocket and
//! a virtual clock.

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
fn client_script_is_javascript_that_names_its_types() {
    check("/vigil.js", "text/javascript; charset=utf-8", CLIENT_JS);
    let response = page("/vigil.js").expect("served");
    assert_eq!(
        response
            .headers()
            .get("x-typescript-types")
            .map(|v| v.as_bytes()),
        Some(&b"/vigil.d.ts"[..])
    );
}

#[test]
fn the_client_and_its_types_may_be_imported_from_any_origin_but_not_the_page() {
    let cors = |path: &str| {
        page(path)
            .expect("served")
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.as_bytes().to_vec())
    };
    assert_eq!(cors("/vigil.js").as_deref(), Some(&b"*"[..]));
    assert_eq!(cors("/vigil.d.ts").as_deref(), Some(&b"*"[..]));
    assert_eq!(cors("/"), None);
}

#[test]
fn client_types_are_typescript() {
    check(
        "/vigil.d.ts",
        "application/typescript; charset=utf-8",
        CLIENT_DTS,
    );
}

#[test]
fn unknown_paths_are_none() {
    for path in [
        "",
        "/index.html",
        "/ws",
        "/favicon.ico",
        "/vigil.js/",
        "/VIGIL.JS",
        "/vigil-client.js",
        "/vigil.ts",
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
    for (name, text) in [("index.html", INDEX_HTML), ("vigil.js", CLIENT_JS)] {
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
    assert_eq!(imports, ["import { VigilClient } from \"./vigil.js\";"]);
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
    scratch.write("vigil.mjs", CLIENT_JS);
    let script = inline(INDEX_HTML, "<script type=\"module\">", "script");
    scratch.write("page.mjs", &script);
    node(&scratch.0, &["--check", "vigil.mjs"]);
    node(&scratch.0, &["--check", "page.mjs"]);
}

/// The doubles the scenarios share: virtual clock, fake socket, fake page.
const FAKE: &str = include_str!("tests/fake.mjs");

/// Runs one scenario (a node script importing `./vigil.mjs` and
/// `./fake.mjs`) that checks every step and prints `ok` at its end.
#[track_caller]
fn run_scenario(name: &str, scenario: &str) {
    let scratch = Scratch::new(name);
    scratch.write("vigil.mjs", CLIENT_JS);
    scratch.write("fake.mjs", FAKE);
    scratch.write("scenario.mjs", scenario);
    let out = node(&scratch.0, &["scenario.mjs"]);
    assert_eq!(out.trim(), "ok", "the scenario ran to its end");
}

/// Requests, presence, probes, backoff, resume and the close codes
/// (`tests/basics.mjs`).
#[test]
fn client_behaves_under_node_with_a_fake_socket_and_clock() {
    run_scenario("basics", include_str!("tests/basics.mjs"));
}

/// The events an application sees, tearing a dead server's socket down at
/// once, hidden tabs with throttled timers, and probing on `visibilitychange`
/// and `online` (`tests/lifecycle.mjs`).
#[test]
fn client_survives_hidden_tabs_and_reports_its_lifecycle() {
    run_scenario("lifecycle", include_str!("tests/lifecycle.mjs"));
}

/// Offsets, a re-join naming the last message received, the missed ones
/// once and in order, and a lost history said plainly
/// (`tests/history.mjs`).
#[test]
fn client_recovers_missed_messages_on_every_reconnect() {
    run_scenario("history", include_str!("tests/history.mjs"));
}

#[test]
fn client_declarations_name_every_export_and_public_method() {
    let exports: Vec<&str> = CLIENT_JS
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|rest| rest.split([' ', '(']).nth(1))
        .collect();
    assert!(exports.len() >= 6, "{exports:?}");
    for name in exports {
        assert!(
            CLIENT_DTS.contains(&format!(" {name}")),
            "vigil.d.ts does not declare `{name}`"
        );
    }
    for method in [
        "connect(): void",
        "close(): void",
        "ping(): Promise<number>",
        "join(channel: string",
        "leave(channel: string",
        "publish(channel: string",
        "presence(channel: string",
        "setWill(channel: string",
        "setToken(token: string",
    ] {
        assert!(CLIENT_DTS.contains(method), "vigil.d.ts lacks `{method}`");
    }
    for event in [
        "open",
        "close",
        "reconnecting",
        "rtt",
        "presence",
        "message",
        "error",
        "state",
    ] {
        assert!(
            CLIENT_DTS.contains(&format!("  {event}: CustomEvent<")),
            "vigil.d.ts lacks the `{event}` event"
        );
        assert!(
            CLIENT_JS.contains(&format!("#emit(\"{event}\"")) || event == "state",
            "vigil.js never emits `{event}`"
        );
    }
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

/// `getToken` before connecting and reconnecting, the in-band refresh ahead
/// of `exp`, and 4003 (`tests/tokens.mjs`).
#[test]
fn client_refreshes_tokens_ahead_of_expiry_and_reconnects_with_fresh_ones() {
    run_scenario("tokens", include_str!("tests/tokens.mjs"));
}

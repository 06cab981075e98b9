//! Interop with clients no one here wrote: the Python `websockets`, Node
//! `ws` and Go gorilla/websocket examples of `tests/interop/clients/` (the code
//! the README shows) against the real `vigil`, each run as a child process.
//!
//! Each client goes through the same six checks: it exchanges messages
//! with a Rust client, over `ws://` and over `wss://` (vigil's own TLS, a CA
//! made for the test); its keepalive and the server's run together for
//! several intervals without either side closing; frozen, it is detected
//! within the server's bound; pinging fast but under the limit it is
//! answered; over the limit it is closed with 1008 "too many pings".
//!
//! Run them with `cargo xtask interop`, which installs the toolchains under
//! `target/interop/` first (bare `cargo test` fails, naming that command).

mod client;
mod scenarios;

use client::Lang;

macro_rules! interop_tests {
    ($($lang:ident: $module:ident,)*) => {$(
        mod $module {
            use super::{Lang, scenarios};

            #[test]
            fn exchanges_messages_with_a_rust_client() {
                scenarios::exchanges_messages_with_a_rust_client(Lang::$lang);
            }

            #[test]
            fn over_wss_it_exchanges_messages_with_a_rust_client() {
                scenarios::exchanges_messages_over_wss(Lang::$lang);
            }

            #[test]
            fn both_keepalives_run_for_several_intervals_and_neither_side_closes() {
                scenarios::both_keepalives_run_and_neither_side_closes(Lang::$lang);
            }

            #[test]
            fn frozen_it_is_detected_within_the_bound_and_its_leave_announced() {
                scenarios::a_frozen_client_is_detected_within_the_bound(Lang::$lang);
            }

            #[test]
            fn pinging_fast_under_the_limit_it_is_answered_and_kept() {
                scenarios::pings_under_the_limit_are_answered(Lang::$lang);
            }

            #[test]
            fn pinging_over_the_limit_it_is_closed_with_1008() {
                scenarios::pings_over_the_limit_close_with_1008(Lang::$lang);
            }
        }
    )*};
}

interop_tests! {
    Python: python,
    Node: node,
    Go: go,
}

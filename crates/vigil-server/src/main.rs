//! `vigil`: the server binary (channels, presence, HTTP API, dashboard over
//! vigil-ws).
//!
//! The server arrives with issue #4. Until then the binary answers `--version`
//! and `--help`, and otherwise says plainly that nothing is served, exiting
//! with an error instead of pretending to listen. Flags move to clap then.

use std::process::ExitCode;

use vigil_core::heartbeat;

/// The exit code for "nothing was done": no server runs yet.
const NOT_BUILT: u8 = 2;

fn usage() -> String {
    format!(
        "\
vigil {version}: keeps WebSocket connections honest (heartbeats, presence)

USAGE:
    vigil [OPTIONS]

OPTIONS:
    -h, --help       print this message
    -V, --version    print the version

The server itself is not built yet (issue #4): without --help or --version,
vigil exits with code {NOT_BUILT}.
",
        version = env!("CARGO_PKG_VERSION")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["-V" | "--version"] => {
            println!("vigil {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["-h" | "--help"] => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        _ => {
            let config = heartbeat::Config::default();
            eprintln!(
                "vigil {}: the server is not built yet (issue #4); nothing is listening.\n\
                 vigil-core's heartbeat defaults: interval {:?}, timeout {:?}, jitter {}.\n\
                 Run `vigil --help` for usage.",
                env!("CARGO_PKG_VERSION"),
                config.interval(),
                config.timeout(),
                config.jitter(),
            );
            ExitCode::from(NOT_BUILT)
        }
    }
}

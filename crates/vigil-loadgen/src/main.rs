//! vigil-loadgen: opens thousands of real WebSocket clients (healthy, silent,
//! slow-reading, flapping, half-open) against a loopback vigil server and
//! reports one JSON document.
//!
//! The harness arrives with issue #5. Until then the binary says so and exits
//! with an error instead of printing a report it did not measure.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "vigil-loadgen {}: the load harness is not built yet (issue #5); no measurement was made",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

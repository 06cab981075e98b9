//! One client can never hurt another: a connection flooding the server
//! with cheap requests gets only its share of its shard, and every other
//! connection keeps being read, answered and heartbeated.

use std::time::{Duration, Instant};
use vigil_e2e::{Bystanders, Flooder, ServerProcess, WsClient};

/// How long the flood lasts: several heartbeat bounds.
const FLOOD: Duration = Duration::from_secs(10);

/// A server with short heartbeats (a starved bystander is closed within
/// about 3 s) and one shard, so the flooder shares it with everyone. The
/// request rate limit is out of the way: this is the engine's fairness,
/// not the limit's (`rate_limits.rs`).
fn start() -> ServerProcess {
    ServerProcess::start_heartbeating(
        "2s",
        &["--shards", "1", "--max-requests-per-second", "1000000"],
    )
}

#[test]
fn a_ping_request_flood_from_one_connection_starves_nobody() {
    let server = start();
    let addr = server.addr();
    let mut bystanders = Bystanders::join(addr, 50, "calm");
    let flood = Flooder::start(addr, &[r#"{"op":"ping","id":1}"#.to_owned()], FLOOD);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut late = 0;
    while started.elapsed() < FLOOD {
        // Quiet for two intervals at a time: the server pings them.
        bystanders.listen(Duration::from_secs(2));
        slowest = slowest.max(bystanders.slowest_round_trip());
        if late < 5 {
            // Clients arriving during the flood are upgraded and greeted
            // promptly too.
            let mut client = WsClient::connect(addr);
            client.next_of_within("welcome", Duration::from_secs(2));
            late += 1;
        }
    }
    let (sent, _) = flood.finish();
    assert!(sent > 100_000, "the flooder sent only {sent} requests");
    assert!(
        slowest < Duration::from_secs(1),
        "a bystander's ping request took {slowest:?} during the flood"
    );
    bystanders.listen(Duration::from_secs(1));
    bystanders.assert_healthy(3, Duration::from_secs(1), &[]);
}

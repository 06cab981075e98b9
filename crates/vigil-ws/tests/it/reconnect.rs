//! The client connector after a server restart: every client reconnects, at
//! jittered times (no herd in lockstep), and each resume hook runs.

use crate::support::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_core::backoff::BackoffConfig;
use vigil_ws::{Connection, Connector, Handler};

#[tokio::test]
async fn clients_reconnect_after_a_restart_with_jittered_delays_and_resume() {
    const CLIENTS: usize = 12;
    let server = TestServer::start(fast_config()).await;
    let addr = server.addr;
    let backoff = BackoffConfig::builder()
        .initial_max(Duration::from_millis(1_500))
        .base(Duration::from_millis(200))
        .cap(Duration::from_secs(2))
        .build()
        .expect("valid");
    let resumed: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let mut connectors = Vec::new();
    for index in 0..CLIENTS {
        let resumed = Arc::clone(&resumed);
        let hook = Arc::new(move |conn: &Connection| {
            resumed.lock().push((index, Instant::now()));
            let _ = conn.send_text("rejoin");
        });
        let connector = Connector::new(format!("ws://{addr}/ws"), fast_config(), backoff)
            .seed(index as u64 + 1)
            .on_resume(hook)
            .spawn(Arc::new(Recorder::default()) as Arc<dyn Handler>)
            .expect("spawn");
        connectors.push(connector);
    }
    for connector in &connectors {
        connector
            .connected(Duration::from_secs(5))
            .await
            .expect("first connect");
    }
    assert!(
        resumed.lock().is_empty(),
        "the first connect is not a resume"
    );

    // Restart: every client is told to go (1001), the port is dead a while.
    server.stop().await;
    let restarted_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = TestServer::start_on(addr, fast_config()).await;
    server
        .recorder
        .opened(CLIENTS - 1, Duration::from_secs(15))
        .await;
    // The client side runs its hook right after the server accepted it.
    for _ in 0..200 {
        let mut distinct: Vec<usize> = resumed.lock().iter().map(|(index, _)| *index).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() >= CLIENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connects: Vec<u64> = connectors.iter().map(|c| c.connects()).collect();
    let closes: Vec<_> = connectors.iter().map(|c| c.last_close()).collect();

    let resumed = resumed.lock().clone();
    let mut clients: Vec<usize> = resumed.iter().map(|(index, _)| *index).collect();
    clients.sort_unstable();
    clients.dedup();
    assert_eq!(
        clients.len(),
        CLIENTS,
        "every resume hook ran: {resumed:?}; connects {connects:?}; last closes {closes:?}"
    );
    // Each resumed client's rejoin message reaches the new server.
    server
        .recorder
        .wait_for(Duration::from_secs(5), |events| {
            let rejoins = events
                .iter()
                .filter(|e| matches!(e, Event::Message(_, vigil_ws::Message::Text(t)) if &t[..] == b"rejoin"))
                .count();
            (rejoins >= CLIENTS).then_some(())
        })
        .await;
    // Not in lockstep: the reconnects spread over the random first delay.
    let mut offsets: Vec<Duration> = resumed.iter().map(|(_, at)| *at - restarted_at).collect();
    offsets.sort();
    let spread = offsets[offsets.len() - 1] - offsets[0];
    assert!(
        spread >= Duration::from_millis(300),
        "reconnects within {spread:?}: {offsets:?}"
    );
    let same_instant = offsets
        .windows(2)
        .filter(|w| w[1] - w[0] < Duration::from_millis(2))
        .count();
    assert!(
        same_instant < CLIENTS / 2,
        "{same_instant} near-simultaneous reconnects: {offsets:?}"
    );
    for connector in connectors {
        connector.stop().await;
    }
    server.stop().await;
}

//! Criterion benches of the heartbeat machine: the per-frame hot path, a
//! timer firing, and a whole heartbeat round of many connections.
//!
//! Each iteration drives the real machine end to end: input, full drain of
//! actions, `poll_timeout`, exactly what the adapter does per event.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use vigil_core::heartbeat::{Action, Config, Frame, Heartbeat, ping_payload};

/// Every scenario is bounded: no bench loop runs longer than this many steps.
const MAX_STEPS: u64 = 1_000_000;

fn drain(heartbeat: &mut Heartbeat) -> u32 {
    let mut count = 0;
    while let Some(action) = heartbeat.poll_action() {
        black_box(action);
        count += 1;
    }
    count
}

fn hot_path(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("heartbeat/hot_path");
    group.throughput(Throughput::Elements(1));

    group.bench_function("data_frame", |b| {
        let mut now = Instant::now();
        let mut heartbeat = Heartbeat::new(now, &config, 1);
        b.iter(|| {
            now += Duration::from_micros(10);
            heartbeat.handle_frame(now, &config, Frame::Data);
            drain(&mut heartbeat);
            black_box(heartbeat.poll_timeout())
        });
    });

    group.bench_function("ping_from_peer", |b| {
        let mut now = Instant::now();
        let mut heartbeat = Heartbeat::new(now, &config, 1);
        b.iter(|| {
            now += Duration::from_micros(10);
            heartbeat.handle_frame(now, &config, Frame::Ping);
            drain(&mut heartbeat);
            black_box(heartbeat.poll_timeout())
        });
    });

    group.bench_function("pong_with_rtt_sample", |b| {
        let start = Instant::now();
        b.iter_batched_ref(
            || {
                // A machine with a ping outstanding, so the pong is a sample.
                let mut heartbeat = Heartbeat::new(start, &config, 1);
                let deadline = heartbeat.poll_timeout().expect("alive");
                heartbeat.handle_timeout(deadline, &config);
                drain(&mut heartbeat);
                (heartbeat, deadline + Duration::from_millis(3))
            },
            |(heartbeat, at)| {
                heartbeat.handle_frame(*at, &config, Frame::Pong(&ping_payload(1)));
                drain(heartbeat);
                black_box(heartbeat.poll_timeout())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn timer(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("heartbeat/timer");
    group.throughput(Throughput::Elements(1));
    // One ping cycle per iteration: the ping timer fires, the ping is
    // drained, the pong comes back 1 ms later.
    group.bench_function("ping_cycle", |b| {
        let mut heartbeat = Heartbeat::new(Instant::now(), &config, 1);
        b.iter(|| {
            let deadline = heartbeat.poll_timeout().expect("alive");
            heartbeat.handle_timeout(deadline, &config);
            let mut id = 0;
            while let Some(action) = heartbeat.poll_action() {
                if let Action::SendPing { id: sent } = action {
                    id = sent;
                }
            }
            let answered = deadline + Duration::from_millis(1);
            heartbeat.handle_frame(answered, &config, Frame::Pong(&ping_payload(id)));
            drain(&mut heartbeat);
            black_box(heartbeat.poll_timeout())
        });
    });
    group.finish();
}

fn heartbeat_round(c: &mut Criterion) {
    const CONNECTIONS: u64 = 10_000;
    let config = Config::default();
    let mut group = c.benchmark_group("heartbeat/round");
    group.throughput(Throughput::Elements(CONNECTIONS));
    // Scenario: 10,000 idle connections each get pinged once and answer.
    group.bench_function("10k_idle_connections", |b| {
        let start = Instant::now();
        let mut connections: Vec<Heartbeat> = (0..CONNECTIONS)
            .map(|seed| Heartbeat::new(start, &config, seed))
            .collect();
        b.iter(|| {
            let mut steps = 0u64;
            for heartbeat in &mut connections {
                let deadline = heartbeat.poll_timeout().expect("alive");
                heartbeat.handle_timeout(deadline, &config);
                while let Some(action) = heartbeat.poll_action() {
                    if let Action::SendPing { id } = action {
                        let answered = deadline + Duration::from_millis(1);
                        heartbeat.handle_frame(answered, &config, Frame::Pong(&ping_payload(id)));
                    }
                    steps += 1;
                }
                assert!(steps < MAX_STEPS, "scenario must stay bounded");
            }
            black_box(steps)
        });
    });
    group.finish();
}

criterion_group!(benches, hot_path, timer, heartbeat_round);
criterion_main!(benches);

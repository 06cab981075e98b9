//! Each scenario's load: how many clients of each kind, the server's
//! heartbeat, and when things happen. `--quick` is the CI size.

use std::{net::SocketAddr, ops::Range, time::Duration};

/// The scenarios `loadtest` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Idle healthy connections: memory per connection, CPU per heartbeat.
    Idle,
    /// Healthy clients beside silent, half-open and slow-reading ones: every
    /// quiet one detected within the bound, no healthy one closed.
    Detect,
    /// The server is stopped for longer than the heartbeat timeout: no
    /// healthy client is closed for the server's own stall.
    Starve,
    /// Pings every 100 ms: the most heartbeat round trips one server core
    /// handles.
    Flood,
    /// One publisher, a channel of subscribers: fan-out throughput and
    /// delivery latency.
    Publish,
    /// The server is killed and restarted under every client at once: how
    /// fast they are all back, none failing, presence whole again.
    Storm,
    /// `storm` with a deploy's restart instead of a crash: SIGTERM (the old
    /// server closes its listener, then sends every client 1001 at its drain
    /// rate) and the new server started at once on the same port.
    Restart,
    /// Several `vigil --cluster` nodes on one port (SO_REUSEPORT) and one
    /// Redis, more clients than one process can hold, some going silent.
    Cluster,
    /// Healthy clients in rooms while flooders of every kind do their worst
    /// (issue #12): no healthy client closed, their round trip before and
    /// during the abuse, what the server answered the flooders.
    Abuse,
    /// Every client in ONE channel (issue #15), once per presence mode: the
    /// ramp, a kill -9 and restart, then a share of the clients leaving and
    /// coming back every second; how soon every client's view of the
    /// channel is whole again and how many bytes that cost each.
    Bigroom,
    /// Clients in rooms of 100 with a publisher each (issue #16), once with
    /// channel history off and once on: every client drops and comes back,
    /// then the server is killed and restarted; what each re-join could
    /// recover, messages lost, duplicates.
    Recover,
}

impl Scenario {
    pub(crate) fn from_name(name: &str) -> Option<Scenario> {
        match name {
            "idle" => Some(Scenario::Idle),
            "detect" => Some(Scenario::Detect),
            "starve" => Some(Scenario::Starve),
            "flood" => Some(Scenario::Flood),
            "publish" => Some(Scenario::Publish),
            "storm" => Some(Scenario::Storm),
            "restart" => Some(Scenario::Restart),
            "cluster" => Some(Scenario::Cluster),
            "abuse" => Some(Scenario::Abuse),
            "bigroom" => Some(Scenario::Bigroom),
            "recover" => Some(Scenario::Recover),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Detect => "detect",
            Scenario::Starve => "starve",
            Scenario::Flood => "flood",
            Scenario::Publish => "publish",
            Scenario::Storm => "storm",
            Scenario::Restart => "restart",
            Scenario::Cluster => "cluster",
            Scenario::Abuse => "abuse",
            Scenario::Bigroom => "bigroom",
            Scenario::Recover => "recover",
        }
    }
}

/// The server's reserve of files for sockets in their HTTP phase
/// (`--max-handshakes`, 1,024 by default) in every scenario but `abuse`:
/// the loadgen connects at a bounded rate, so half is plenty and leaves
/// this machine's 20,000 files room for 19,000 connections.
const HANDSHAKE_RESERVE: usize = 512;

/// The server's ping jitter, passed explicitly so the bound below holds.
const JITTER: f64 = 0.1;
/// What the detection bound allows beyond `interval × (1 + jitter) +
/// timeout`: the shard's tick, scheduling on a shared machine, and the
/// client seeing the server's FIN.
const BOUND_SLACK: Duration = Duration::from_secs(1);
/// The channel every client of `publish` joins.
const CHANNEL: &str = "bench";
/// The stem of the rooms `cluster`'s clients join.
const CLUSTER_CHANNEL: &str = "cluster";
/// Clients per room in `cluster`: every join is announced to every member,
/// and one loadgen core must read all of it for 45,000 clients arriving in
/// 22 s (rooms of 100 made that 200,000 messages a second, more than the
/// loadgen could read; the server then closed it as a slow consumer).
const CLUSTER_ROOM: u32 = 10;
/// The stem of the rooms `storm`'s clients join.
const STORM_CHANNEL: &str = "storm";
/// Clients per room in `storm`: presence is announced to every member, so
/// a room's cost grows with the square of its size; rooms of 100 are what
/// a chat or a document service holds.
const STORM_ROOM: u32 = 100;
/// `storm`'s steady window before the restart.
const STORM_STEADY: Duration = Duration::from_secs(10);
/// How long `storm` waits for every client to be back after the restart;
/// the loadgen holds that long past it.
pub(crate) const STORM_PATIENCE: Duration = Duration::from_secs(30);
/// Reconnect backoff cap of `storm`'s clients.
const STORM_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The stem of the rooms `abuse`'s clients join, and their size.
const ABUSE_CHANNEL: &str = "abuse";
const ABUSE_ROOM: u32 = 100;
/// How long `abuse`'s flooders flood; the bystanders' round trips are
/// also measured over as long a window just before.
const ABUSE_LENGTH: Duration = Duration::from_secs(30);
const ABUSE_LENGTH_QUICK: Duration = Duration::from_secs(5);
/// The kinds of flooder of `abuse` (vigil-loadgen's `--kind` names).
pub(crate) const FLOODS: [&str; 8] = [
    "publish-flood",
    "presence-flood",
    "ping-flood",
    "wsping-flood",
    "join-flood",
    "meta-flood",
    "malformed-flood",
    "slowloris",
];
/// `abuse`'s flooders come from 127.0.0.10 and 127.0.0.11, apart from the
/// bystanders (127.0.0.2-5): the server's per-address defences then fall
/// on them alone, and the harness's `/metrics` scrapes (127.0.0.1) pass.
const FLOODER_FIRST_SOURCE: u8 = 10;
const FLOODER_SOURCES: u8 = 2;
/// The channel every client of `bigroom` joins.
const ROOM_CHANNEL: &str = "bigroom";
/// `bigroom`'s steady moment between the ramp (and 2 s) and the restart.
const ROOM_STEADY: Duration = Duration::from_secs(3);
/// How often the publisher of `publish` sends.
const PUBLISH_EVERY: Duration = Duration::from_millis(20);
/// Connections one loadgen process holds in these plans (20,000 files a
/// process; the loadgen spreads more over child processes).
const PER_LOADGEN: u32 = 19_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) scenario: Scenario,
    pub(crate) quick: bool,
    pub(crate) healthy: u32,
    pub(crate) silent: u32,
    pub(crate) half_open: u32,
    pub(crate) slow_readers: u32,
    /// Clients publishing to the channel everyone joins (`publish`).
    pub(crate) publishers: u32,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// Connections opened per second.
    pub(crate) rate: u32,
    /// When quiet kinds turn quiet, from their handshake.
    pub(crate) silent_after: Duration,
    /// How long the loadgen holds after its ramp.
    pub(crate) hold: Duration,
    /// When (from the loadgen's start) to SIGSTOP the server, and for how long.
    pub(crate) stop: Option<(Duration, Duration)>,
    /// When (from the loadgen's start) to kill and restart the server.
    pub(crate) restart_after: Option<Duration>,
    /// Loadgen processes the clients are spread over.
    pub(crate) loadgen_processes: u32,
    /// `vigil` processes sharing the port (`cluster`), else 1.
    pub(crate) nodes: u32,
    /// `--shards` of each server; `None`: its default (one per core).
    pub(crate) shards: Option<u32>,
    /// `--tls`: the server speaks TLS with these files, the loadgen wss.
    pub(crate) tls: Option<super::tls::TlsFiles>,
    /// Flooders of each kind in [`FLOODS`] (`abuse`), in a loadgen process
    /// of their own.
    pub(crate) flooders: u32,
    /// When (from the loadgens' start) the flooders start, and for how
    /// long they flood (`abuse`).
    pub(crate) abuse: Option<(Duration, Duration)>,
    /// `bigroom`: the channel's presence mode, and the config file (written
    /// by the harness) that gives it.
    pub(crate) room: Option<RoomMode>,
    pub(crate) config: Option<std::path::PathBuf>,
    /// `recover`: whether the rooms keep history.
    pub(crate) history: Option<bool>,
}

impl Plan {
    pub(crate) fn of(scenario: Scenario, quick: bool) -> Plan {
        let (interval, timeout) = if scenario == Scenario::Flood {
            // The shortest interval and timeout vigil-core allows.
            (Duration::from_millis(100), Duration::from_secs(1))
        } else if quick && scenario == Scenario::Abuse {
            // A CI machine under a flood: room for a late pong.
            (Duration::from_secs(1), Duration::from_secs(2))
        } else if quick {
            (Duration::from_secs(1), Duration::from_secs(1))
        } else {
            (Duration::from_secs(5), Duration::from_secs(10))
        };
        let base = Plan {
            scenario,
            quick,
            healthy: 0,
            silent: 0,
            half_open: 0,
            slow_readers: 0,
            publishers: 0,
            interval,
            timeout,
            rate: if quick { 1_000 } else { 2_000 },
            // Long enough for a steady window before anyone turns quiet.
            silent_after: if quick { interval * 3 } else { interval * 6 },
            hold: Duration::ZERO,
            stop: None,
            restart_after: None,
            loadgen_processes: 1,
            nodes: 1,
            shards: None,
            tls: None,
            flooders: 0,
            abuse: None,
            room: None,
            config: None,
            history: None,
        };
        let mut plan = match (scenario, quick) {
            (Scenario::Idle, true) => Plan {
                healthy: 1_000,
                ..base
            },
            (Scenario::Idle, false) => Plan {
                healthy: 19_000,
                ..base
            },
            (Scenario::Detect, true) => Plan {
                healthy: 200,
                silent: 20,
                half_open: 20,
                slow_readers: 5,
                ..base
            },
            (Scenario::Detect, false) => Plan {
                healthy: 10_000,
                silent: 500,
                half_open: 500,
                slow_readers: 100,
                ..base
            },
            (Scenario::Starve, true) => Plan {
                healthy: 200,
                silent: 20,
                ..base
            },
            (Scenario::Starve, false) => Plan {
                healthy: 10_000,
                silent: 500,
                ..base
            },
            (Scenario::Flood, true) => Plan {
                healthy: 1_000,
                ..base
            },
            (Scenario::Flood, false) => Plan {
                healthy: 19_000,
                ..base
            },
            (Scenario::Publish, quick) => Plan {
                healthy: if quick { 100 } else { 1_000 },
                publishers: 1,
                ..base
            },
            (Scenario::Storm | Scenario::Restart, quick) => Plan {
                healthy: if quick { 500 } else { 19_000 },
                ..base
            },
            (Scenario::Cluster, quick) => Plan {
                healthy: if quick { 570 } else { 44_700 },
                silent: if quick { 30 } else { 300 },
                nodes: 3,
                ..base
            },
            (Scenario::Abuse, quick) => Plan {
                healthy: if quick { 200 } else { 10_000 },
                flooders: if quick { 1 } else { 10 },
                ..base
            },
            (Scenario::Bigroom, quick) => Plan {
                // 700: a page of them all is over 16 KiB, which vigil sends
                // in fragments, and the pagers must put together.
                healthy: if quick { 700 } else { 19_000 },
                // 2,000 a second, each joining the one channel, overran
                // the 512 handshakes in flight now and then.
                rate: 1_000,
                room: Some(RoomMode::Counts),
                ..base
            },
            (Scenario::Recover, quick) => Plan {
                healthy: if quick { 490 } else { 9_900 },
                publishers: if quick { 10 } else { 100 },
                history: Some(true),
                ..base
            },
        };
        if scenario == Scenario::Cluster && !quick {
            // 45,000 clients take 22.5 s to arrive: a steady window of its
            // own after them, before the first silent one turns quiet.
            plan.silent_after = plan.interval * 12;
        }
        plan.loadgen_processes =
            if matches!(scenario, Scenario::Detect | Scenario::Cluster) && quick {
                // The run in `cargo xtask test`: the spread over processes is
                // on the path it checks.
                2
            } else {
                plan.connections().div_ceil(PER_LOADGEN)
            };
        let ramp = plan.ramp();
        if scenario == Scenario::Abuse {
            let length = if quick {
                ABUSE_LENGTH_QUICK
            } else {
                ABUSE_LENGTH
            };
            // Settled, then a window as long as the abuse to compare with.
            plan.abuse = Some((ramp + Duration::from_secs(2) + length, length));
        }
        plan.hold = match scenario {
            // Enough heartbeats for a steady window.
            Scenario::Idle => plan.interval * 8,
            Scenario::Flood => Duration::from_secs(30),
            Scenario::Publish => Duration::from_secs(if quick { 8 } else { 30 }),
            // A steady window, the restart, and room for everyone to come
            // back (the harness waits at most STORM_PATIENCE).
            Scenario::Storm | Scenario::Restart => {
                STORM_STEADY + Duration::from_secs(3) + STORM_PATIENCE
            }
            // Every quiet client's detection fits, with room to spare.
            Scenario::Detect | Scenario::Cluster => plan.silent_after + plan.bound() * 2,
            Scenario::Starve => plan.silent_after + plan.stall() + plan.bound() * 2,
            // The loadgen's hold starts after its ramp: past the abuse's end.
            Scenario::Abuse => plan.abuse_end().saturating_sub(ramp) + Duration::from_secs(3),
            Scenario::Recover => plan.recover_timeline().end - ramp,
            // Through the churn, and the leave grace after it.
            Scenario::Bigroom => {
                let timeline = plan.room_timeline();
                timeline.churn_at + timeline.churn + timeline.settle - ramp
            }
        };
        if plan.restarts() {
            // Killed (SIGKILL, or SIGTERM for `restart`) and started again on the same port once the
            // window is measured.
            plan.restart_after = Some(match scenario {
                Scenario::Recover => plan.recover_timeline().kill_at,
                _ => plan.window().end + Duration::from_secs(1),
            });
        }
        if scenario == Scenario::Starve {
            // Stop just after the last client went quiet: the silent ones
            // are mid-detection, the healthy ones mid-heartbeat.
            plan.stop = Some((ramp + plan.silent_after + plan.interval / 2, plan.stall()));
        }
        plan
    }

    pub(crate) fn name(&self) -> &'static str {
        self.scenario.name()
    }

    /// Whether the server is restarted under its clients (`storm`,
    /// `restart`, `bigroom`).
    pub(crate) fn restarts(&self) -> bool {
        matches!(
            self.scenario,
            Scenario::Storm | Scenario::Restart | Scenario::Bigroom | Scenario::Recover
        )
    }

    pub(crate) fn connections(&self) -> u32 {
        self.healthy + self.silent + self.half_open + self.slow_readers + self.publishers
    }

    /// How long the server is stopped in `starve`: longer than the whole
    /// heartbeat bound, so every connection's deadline passes during it.
    fn stall(&self) -> Duration {
        self.interval + self.timeout + Duration::from_secs(1)
    }

    /// When the abuse ends, from the loadgens' start (zero without one).
    pub(crate) fn abuse_end(&self) -> Duration {
        self.abuse
            .map_or(Duration::ZERO, |(at, length)| at + length)
    }

    pub(crate) fn ramp(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.connections()) / f64::from(self.rate))
    }

    /// The promise: a quiet peer is closed within `interval × (1 + jitter)
    /// + timeout` of its last frame, plus [`BOUND_SLACK`].
    pub(crate) fn bound(&self) -> Duration {
        self.interval.mul_f64(1.0 + JITTER) + self.timeout + BOUND_SLACK
    }

    /// The steady window for CPU and memory, from the loadgen's start:
    /// after the ramp and one heartbeat (two for `idle`), ending before the
    /// first client can turn quiet.
    pub(crate) fn window(&self) -> Range<Duration> {
        match self.scenario {
            Scenario::Idle => {
                let start = self.ramp() + self.interval * 2;
                return start..start + self.interval * 4;
            }
            Scenario::Flood | Scenario::Publish => {
                let start = self.ramp() + Duration::from_secs(2);
                return start..start + self.hold / 2;
            }
            Scenario::Storm | Scenario::Restart => {
                let start = self.ramp() + Duration::from_secs(2);
                return start..start + STORM_STEADY;
            }
            Scenario::Bigroom | Scenario::Recover => {
                let start = self.ramp() + Duration::from_secs(2);
                return start..start + ROOM_STEADY;
            }
            // The window before the abuse, as long as the abuse.
            Scenario::Abuse => {
                if let Some((at, length)) = self.abuse {
                    return at.saturating_sub(length)..at;
                }
            }
            Scenario::Detect | Scenario::Starve | Scenario::Cluster => {}
        }
        let start = self.ramp() + self.interval;
        start..self.silent_after.max(start + Duration::from_millis(500))
    }

    /// The loadgen's own deadline: its ramp, settle and hold, plus margin.
    pub(crate) fn loadgen_lifetime(&self) -> Duration {
        self.ramp() + Duration::from_secs(12) + self.hold + Duration::from_secs(60)
    }

    /// The name of this run's result files: the scenario, and the shard
    /// count when one was chosen (`flood-2-shards`).
    pub(crate) fn file_stem(&self) -> String {
        let tls = if self.tls.is_some() { "-tls" } else { "" };
        let mode = match (self.room, self.history) {
            (Some(mode), _) => format!("-{}", mode.name()),
            (None, Some(true)) => "-history".to_owned(),
            (None, Some(false)) => "-no-history".to_owned(),
            (None, None) => String::new(),
        };
        match self.shards {
            Some(shards) => format!("{}{mode}{tls}-{shards}-shards", self.name()),
            None => format!("{}{mode}{tls}", self.name()),
        }
    }

    /// `--join` and `--channels` of `abuse`: rooms of [`ABUSE_ROOM`].
    fn abuse_rooms(&self) -> [String; 4] {
        [
            "--join".to_owned(),
            ABUSE_CHANNEL.to_owned(),
            "--channels".to_owned(),
            self.healthy.div_ceil(ABUSE_ROOM).to_string(),
        ]
    }

    /// The flooders' loadgen command line against `addr` (`abuse`): every
    /// kind of [`FLOODS`], `flooders` of each, connected from the start and
    /// flooding from `--abuse-at-ms`.
    pub(crate) fn flooder_args(&self, addr: SocketAddr) -> Vec<String> {
        let (at, length) = self.abuse.unwrap_or_default();
        let kinds: Vec<String> = FLOODS.iter().map(|kind| format!("{kind}=1")).collect();
        let mut args = vec![
            "--url".to_owned(),
            format!("ws://{addr}/ws"),
            "--kind".to_owned(),
            kinds.join(","),
            "--connections".to_owned(),
            (self.flooders * FLOODS.len() as u32).to_string(),
            "--rate".to_owned(),
            "1000".to_owned(),
            "--sources".to_owned(),
            FLOODER_SOURCES.to_string(),
            "--first-source".to_owned(),
            FLOODER_FIRST_SOURCE.to_string(),
            // Its own ramp is short: hold (after it) past the abuse's end;
            // the flooders end when it does, and so does the process.
            "--hold".to_owned(),
            (self.abuse_end() + Duration::from_secs(3))
                .as_secs()
                .to_string(),
            "--abuse-at-ms".to_owned(),
            at.as_millis().to_string(),
            "--abuse-ms".to_owned(),
            length.as_millis().to_string(),
            "--processes".to_owned(),
            "1".to_owned(),
        ];
        args.extend(self.abuse_rooms());
        args
    }

    /// Messages a second the publishers send (`publish`).
    pub(crate) fn publish_rate(&self) -> f64 {
        f64::from(self.publishers) / PUBLISH_EVERY.as_secs_f64()
    }

    pub(crate) fn describe(&self) -> String {
        let mut text = self.describe_clients();
        if let Some((at, length)) = self.abuse {
            text.push_str(&format!(
                "; {} flooders of each of {} kinds from {} ms for {} ms (a loadgen process of \
                 their own)",
                self.flooders,
                FLOODS.len(),
                at.as_millis(),
                length.as_millis()
            ));
        }
        text
    }

    fn describe_clients(&self) -> String {
        format!(
            "{} healthy, {} silent, {} half-open, {} slow readers, {} publishers; ping after {} \
             ms, timeout {} ms, jitter {JITTER}; bound {} ms; {} server process(es), {} loadgen \
             process(es){}",
            self.healthy,
            self.silent,
            self.half_open,
            self.slow_readers,
            self.publishers,
            self.interval.as_millis(),
            self.timeout.as_millis(),
            self.bound().as_millis(),
            self.nodes,
            self.loadgen_processes,
            match self.stop {
                Some((_, length)) => format!("; server stopped for {} ms", length.as_millis()),
                None => String::new(),
            }
        )
    }
}

mod args;
mod recover;
mod room;
pub(crate) use room::RoomMode;

#[cfg(test)]
mod tests;

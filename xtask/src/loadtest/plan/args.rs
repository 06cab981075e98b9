//! The command lines of a plan: the server's flags and the loadgen's.

use super::*;

impl Plan {
    /// The server's heartbeat flags.
    pub(crate) fn server_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--heartbeat-interval".to_owned(),
            format!("{}ms", self.interval.as_millis()),
            "--heartbeat-timeout".to_owned(),
            format!("{}ms", self.timeout.as_millis()),
            "--heartbeat-jitter".to_owned(),
            JITTER.to_string(),
            // Every client comes from loopback: no per-address cap.
            "--max-connections-per-ip".to_owned(),
            self.connections().to_string(),
        ]
        .into();
        if self.scenario != Scenario::Abuse {
            // See HANDSHAKE_RESERVE; `abuse` keeps the default (slowloris
            // is one of its floods).
            args.extend(["--max-handshakes".to_owned(), HANDSHAKE_RESERVE.to_string()]);
        }
        if self.publishers > 0 {
            // `publish` offers more than the default 10 publishes a second.
            args.extend([
                "--max-publishes-per-second".to_owned(),
                (self.publish_rate().ceil() as u64).max(1).to_string(),
            ]);
        }
        if let Some(tls) = &self.tls {
            args.extend([
                "--tls-cert".to_owned(),
                tls.cert.display().to_string(),
                "--tls-key".to_owned(),
                tls.key.display().to_string(),
            ]);
        }
        if let Some(shards) = self.shards {
            args.extend(["--shards".to_owned(), shards.to_string()]);
        }
        if let Some(config) = &self.config {
            // `bigroom`'s and `recover`'s namespaces, written by the harness.
            args.extend(["--config".to_owned(), config.display().to_string()]);
        }
        args
    }

    /// Source addresses of the loadgen's clients. vigil lets one address
    /// hold a sixteenth of `--max-handshakes` in their HTTP phase (32 of
    /// 512) and refuses the rest at once: `bigroom`'s and `recover`'s
    /// crowds, all coming back at once, come from 4 times as many
    /// addresses as take every place, as a real crowd would (from many
    /// more); 4 otherwise.
    fn sources(&self) -> usize {
        if self.room.is_some() || self.scenario == Scenario::Recover {
            4 * HANDSHAKE_RESERVE.div_ceil(HANDSHAKE_RESERVE / 16)
        } else {
            4
        }
    }

    /// The loadgen's command line against `addr`.
    pub(crate) fn loadgen_args(&self, addr: SocketAddr) -> Vec<String> {
        let mix: Vec<String> = [
            ("healthy", self.healthy),
            ("silent", self.silent),
            ("half-open", self.half_open),
            ("slow-reader", self.slow_readers),
            ("publisher", self.publishers),
        ]
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
        let mut args = vec![
            "--url".to_owned(),
            match self.tls {
                Some(_) => format!("wss://{addr}/ws"),
                None => format!("ws://{addr}/ws"),
            },
            "--kind".to_owned(),
            mix.join(","),
            "--connections".to_owned(),
            self.connections().to_string(),
            "--rate".to_owned(),
            self.rate.to_string(),
            "--sources".to_owned(),
            self.sources().to_string(),
            "--hold".to_owned(),
            self.hold.as_secs().max(1).to_string(),
            "--silent-after-ms".to_owned(),
            self.silent_after.as_millis().to_string(),
            "--bound-ms".to_owned(),
            self.bound().as_millis().to_string(),
            "--processes".to_owned(),
            self.loadgen_processes.to_string(),
        ];
        if self.scenario == Scenario::Cluster {
            // Presence to keep across nodes, in rooms of CLUSTER_ROOM.
            args.extend([
                "--join".to_owned(),
                CLUSTER_CHANNEL.to_owned(),
                "--channels".to_owned(),
                self.connections().div_ceil(CLUSTER_ROOM).to_string(),
            ]);
        }
        if self.scenario == Scenario::Recover {
            args.extend(self.recover_args());
        } else if let Some(mode) = self.room {
            let timeline = self.room_timeline();
            let ms = |at: Duration| at.as_millis().to_string();
            args.extend([
                "--join".to_owned(),
                ROOM_CHANNEL.to_owned(),
                "--reconnect-max-ms".to_owned(),
                ms(STORM_BACKOFF_CAP),
                "--view-phases-ms".to_owned(),
                self.room_marks().map(ms).join(","),
                "--churn-at-ms".to_owned(),
                ms(timeline.churn_at),
                "--churn-ms".to_owned(),
                ms(timeline.churn),
                "--churn-percent".to_owned(),
                timeline.churn_percent.to_string(),
            ]);
            if let Some(every) = mode.page_every(self.quick) {
                args.extend(["--page-every".to_owned(), every.to_string()]);
            }
        } else if self.restarts() {
            args.extend([
                "--join".to_owned(),
                STORM_CHANNEL.to_owned(),
                "--channels".to_owned(),
                self.connections().div_ceil(STORM_ROOM).to_string(),
                "--reconnect-max-ms".to_owned(),
                STORM_BACKOFF_CAP.as_millis().to_string(),
            ]);
        }
        if let Some((at, length)) = self.abuse {
            // Rooms of bystanders timing their own pings, which the
            // flooders' process joins too.
            args.extend([
                "--probe-rtt-every".to_owned(),
                "1".to_owned(),
                "--abuse-at-ms".to_owned(),
                at.as_millis().to_string(),
                "--abuse-ms".to_owned(),
                length.as_millis().to_string(),
            ]);
            args.extend(self.abuse_rooms());
        }
        if self.publishers > 0 && self.scenario == Scenario::Publish {
            args.extend([
                "--join".to_owned(),
                CHANNEL.to_owned(),
                "--publish-ms".to_owned(),
                PUBLISH_EVERY.as_millis().to_string(),
                // Once every subscriber has joined: steady-state latency.
                "--publish-after-ms".to_owned(),
                (self.ramp() + Duration::from_secs(2))
                    .as_millis()
                    .to_string(),
            ]);
        }
        if let Some(tls) = &self.tls {
            args.extend(["--ca-file".to_owned(), tls.ca.display().to_string()]);
        }
        args
    }
}

//! What the clients of one big channel believe about its presence, and what
//! it cost them (`--view-phases-ms`): each healthy client keeps a [`View`]
//! of the channel, built only from what the server sent it (a join's
//! snapshot, `presence` diffs, `presence_count` events, pages it read), and
//! counts every byte it received. A view is whole when it counts every
//! client of the run (and, for a client that pages, when its last reading
//! of the list found them all). The report splits bytes and views into
//! phases at the given marks: how much each client received in each, and
//! how many views were whole at each phase's end, and since when.

use std::{
    collections::HashSet,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering::Relaxed},
    },
};

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{MAX_PHASES, Options};

/// "Not whole" in [`ClientRecord::whole_since_ms`].
const NOT_WHOLE: u32 = u32::MAX;
/// Members a page asks for: the most the server gives.
const PAGE_LIMIT: u32 = 1_000;

/// Over every client of this process: written by each client's task, read
/// at the marks and at the end.
#[derive(Debug)]
pub(crate) struct RoomTally {
    /// Users the channel has when whole: one per client of the run.
    expected: u64,
    /// Phase boundaries, ms from the run's start.
    marks: Vec<u32>,
    page_every: Option<u32>,
    clients: Box<[ClientRecord]>,
    /// Taken at each mark (the end of a phase), in order.
    snapshots: Mutex<Vec<Snapshot>>,
    /// Pages read (replies to a client's page request).
    pages_read: AtomicU64,
    /// Readings of the whole list that found it complete, and that did not.
    readings_complete: AtomicU32,
    readings_short: AtomicU32,
    /// Page requests the server refused, and the first refusal.
    page_errors: AtomicU32,
    first_page_error: OnceLock<String>,
}

#[derive(Debug)]
struct ClientRecord {
    bytes: [AtomicU64; MAX_PHASES],
    /// When its view last became whole (ms from the run's start), or
    /// [`NOT_WHOLE`].
    whole_since_ms: AtomicU32,
}

/// The views at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    whole: u32,
    /// The latest moment a whole view became whole.
    whole_by_ms: Option<u32>,
}

impl RoomTally {
    /// The tally `options` ask for (`--view-phases-ms`), for `clients`
    /// connections in this process.
    pub(crate) fn of(options: &Options, clients: usize) -> Option<RoomTally> {
        let marks = options.room.phase_marks.clone()?;
        Some(RoomTally {
            expected: u64::from(options.connections),
            marks,
            page_every: options.room.page_every,
            clients: (0..clients)
                .map(|_| ClientRecord {
                    bytes: Default::default(),
                    whole_since_ms: AtomicU32::new(NOT_WHOLE),
                })
                .collect(),
            snapshots: Mutex::new(Vec::new()),
            pages_read: AtomicU64::new(0),
            readings_complete: AtomicU32::new(0),
            readings_short: AtomicU32::new(0),
            page_errors: AtomicU32::new(0),
            first_page_error: OnceLock::new(),
        })
    }

    /// The marks, for the task that takes a snapshot at each.
    pub(crate) fn marks(&self) -> &[u32] {
        &self.marks
    }

    /// A fresh view for a connection of client `local` (this process's
    /// numbering), `index` (the run's), of `channel`.
    pub(crate) fn view<'a>(&'a self, local: usize, index: usize, channel: &'a str) -> View<'a> {
        View {
            tally: self,
            local,
            pager: self.page_every.is_some_and(|k| is_pager(index, k as usize)),
            channel,
            version: None,
            users: None,
            members: None,
            pages: false,
            paging: None,
            paged_whole: false,
            count_while_reading: false,
            next_id: 1,
            whole: false,
        }
    }

    fn phase_of(&self, now_ms: u32) -> usize {
        self.marks.iter().filter(|&&mark| mark <= now_ms).count()
    }

    /// Records the views now: at a mark, the end of a phase.
    pub(crate) fn take_snapshot(&self) {
        let snapshot = self.snapshot();
        if let Ok(mut snapshots) = self.snapshots.lock() {
            snapshots.push(snapshot);
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut whole = 0;
        let mut whole_by_ms = None;
        for client in &self.clients[..] {
            let since = client.whole_since_ms.load(Relaxed);
            if since != NOT_WHOLE {
                whole += 1;
                whole_by_ms = whole_by_ms.max(Some(since));
            }
        }
        Snapshot { whole, whole_by_ms }
    }

    /// The report, at `end_ms`: every phase's bytes, and its views at its
    /// end (the last phase's now).
    pub(crate) fn report(&self, end_ms: u32) -> RoomReport {
        let mut snapshots = self
            .snapshots
            .lock()
            .map(|taken| taken.clone())
            .unwrap_or_default();
        snapshots.truncate(self.marks.len());
        snapshots.push(self.snapshot());
        let phases = (0..=self.marks.len())
            .map(|phase| {
                let mut bytes: Vec<u64> = self
                    .clients
                    .iter()
                    .map(|client| client.bytes[phase].load(Relaxed))
                    .collect();
                bytes.sort_unstable();
                let from_ms = phase.checked_sub(1).map_or(0, |before| self.marks[before]);
                let to_ms = self.marks.get(phase).copied().unwrap_or(end_ms);
                let snapshot = snapshots.get(phase);
                PhaseReport {
                    from_ms,
                    to_ms,
                    bytes_total: bytes.iter().sum(),
                    bytes_per_client_p50: bytes.get(bytes.len() / 2).copied().unwrap_or(0),
                    bytes_per_client_max: bytes.last().copied().unwrap_or(0),
                    views_whole: snapshot.map(|s| s.whole),
                    whole_by_ms: snapshot.and_then(|s| s.whole_by_ms),
                }
            })
            .collect();
        RoomReport {
            expected_users: self.expected,
            clients: self.clients.len() as u32,
            pagers: self
                .page_every
                .map_or(0, |k| self.clients.len().div_ceil(k as usize) as u32),
            pages_read: self.pages_read.load(Relaxed),
            list_readings_complete: self.readings_complete.load(Relaxed),
            list_readings_short: self.readings_short.load(Relaxed),
            page_errors: self.page_errors.load(Relaxed),
            first_page_error: self.first_page_error.get().cloned(),
            phases,
        }
    }
}

/// `room` in the report.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RoomReport {
    pub(crate) expected_users: u64,
    pub(crate) clients: u32,
    pub(crate) pagers: u32,
    pub(crate) pages_read: u64,
    pub(crate) list_readings_complete: u32,
    pub(crate) list_readings_short: u32,
    pub(crate) page_errors: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_page_error: Option<String>,
    pub(crate) phases: Vec<PhaseReport>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct PhaseReport {
    pub(crate) from_ms: u32,
    pub(crate) to_ms: u32,
    /// Bytes the clients received in the phase, frame headers included.
    pub(crate) bytes_total: u64,
    pub(crate) bytes_per_client_p50: u64,
    pub(crate) bytes_per_client_max: u64,
    /// Views whole at the phase's end, and the latest moment one of them
    /// became whole.
    pub(crate) views_whole: Option<u32>,
    pub(crate) whole_by_ms: Option<u32>,
}

/// Whether client `index` reads the list (`--page-every k`): one in every
/// block of `k` clients, at a different place in each block (block `j`'s
/// `j % k`-th), so that the readers do not all share one residue (and one
/// moment of the churn).
fn is_pager(index: usize, k: usize) -> bool {
    index % k == (index / k) % k
}

/// One connection's belief about its channel.
#[derive(Debug)]
pub(crate) struct View<'a> {
    tally: &'a RoomTally,
    local: usize,
    pager: bool,
    channel: &'a str,
    version: Option<u64>,
    users: Option<u64>,
    /// The list, while the channel sends it (members mode under its cap).
    members: Option<HashSet<Box<str>>>,
    /// Whether the server says the list may be read in pages.
    pages: bool,
    paging: Option<Paging>,
    /// Whether its last reading of the list found every client.
    paged_whole: bool,
    /// Whether counts arrived while a reading was under way (a short
    /// reading is then read again at once).
    count_while_reading: bool,
    next_id: u64,
    whole: bool,
}

/// A reading of the list in progress: the page request awaited, and the
/// members counted so far.
#[derive(Debug, Clone, Copy)]
struct Paging {
    id: u64,
    seen: u64,
}

impl View<'_> {
    /// A frame of `payload_len` bytes arrived at `now_ms`.
    pub(crate) fn received(&self, payload_len: usize, now_ms: u32) {
        let header = match payload_len {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        let phase = self.tally.phase_of(now_ms).min(MAX_PHASES - 1);
        self.tally.clients[self.local].bytes[phase]
            .fetch_add((payload_len + header) as u64, Relaxed);
    }

    /// Applies a text message of the server's; returns a request to send
    /// (the next page) if there is one.
    pub(crate) fn on_text(&mut self, payload: &[u8], now_ms: u32) -> Option<String> {
        let message: Value = serde_json::from_slice(payload).ok()?;
        let request = match message["type"].as_str() {
            Some("reply") => self.on_reply(&message),
            Some("error") => {
                self.on_error(&message);
                None
            }
            Some("presence") => {
                self.on_diff(&message);
                None
            }
            Some("presence_count") => {
                self.on_count(&message);
                // Read the list on news of the counts, not straight after a
                // reading that came up short.
                self.start_reading()
            }
            _ => None,
        };
        self.update_whole(now_ms);
        request
    }

    /// The connection ended: nothing is known any more.
    pub(crate) fn ended(&mut self) {
        self.whole = false;
        self.tally.clients[self.local]
            .whole_since_ms
            .store(NOT_WHOLE, Relaxed);
    }

    fn on_reply(&mut self, reply: &Value) -> Option<String> {
        let presence = &reply["presence"];
        if let Some(paging) = self.paging
            && reply["id"].as_u64() == Some(paging.id)
        {
            return self.on_page(paging, presence);
        }
        // A join's snapshot (its id is null): the state at its version.
        let version = presence["version"].as_u64()?;
        self.version = Some(version);
        if presence["mode"] == "counts" {
            self.members = None;
            self.users = presence["users"].as_u64();
            self.pages = presence["pages"].as_bool().unwrap_or(false);
        } else {
            let members = presence["members"].as_array()?;
            let list: HashSet<Box<str>> = members
                .iter()
                .filter_map(|member| member["user"].as_str().map(Box::from))
                .collect();
            self.users = Some(list.len() as u64);
            self.members = Some(list);
        }
        self.start_reading()
    }

    /// A page request refused: the reading is abandoned (and counted); the
    /// next whole count starts another.
    fn on_error(&mut self, error: &Value) {
        let Some(paging) = self.paging else {
            return;
        };
        if error["id"].as_u64() != Some(paging.id) {
            return;
        }
        self.paging = None;
        self.tally.page_errors.fetch_add(1, Relaxed);
        let _ = self.tally.first_page_error.set(error.to_string());
    }

    fn on_page(&mut self, paging: Paging, page: &Value) -> Option<String> {
        self.tally.pages_read.fetch_add(1, Relaxed);
        let seen = paging.seen + page["members"].as_array().map_or(0, Vec::len) as u64;
        if let Some(cursor) = page["next"].as_str() {
            return Some(self.page_request(seen, Some(cursor)));
        }
        self.paging = None;
        self.paged_whole = seen == self.tally.expected;
        let readings = match self.paged_whole {
            true => &self.tally.readings_complete,
            false => &self.tally.readings_short,
        };
        readings.fetch_add(1, Relaxed);
        // Counts that came meanwhile were not acted on: act on them now.
        if std::mem::take(&mut self.count_while_reading) {
            return self.start_reading();
        }
        None
    }

    fn on_diff(&mut self, diff: &Value) {
        let (Some(version), Some(members)) = (diff["version"].as_u64(), self.members.as_mut())
        else {
            return;
        };
        if self.version.is_some_and(|known| version <= known) {
            return;
        }
        for join in diff["joins"].as_array().into_iter().flatten() {
            if let Some(user) = join["user"].as_str() {
                members.insert(Box::from(user));
            }
        }
        for leave in diff["leaves"].as_array().into_iter().flatten() {
            if let Some(user) = leave.as_str() {
                members.remove(user);
            }
        }
        self.version = Some(version);
        self.users = Some(members.len() as u64);
    }

    fn on_count(&mut self, count: &Value) {
        let Some(version) = count["version"].as_u64() else {
            return;
        };
        // A change of `connections` alone keeps the version.
        if self.version.is_some_and(|known| version < known) {
            return;
        }
        self.version = Some(version);
        self.members = None;
        self.users = count["users"].as_u64();
        self.pages = count["pages"].as_bool().unwrap_or(false);
        self.count_while_reading = self.paging.is_some();
    }

    /// A pager starts reading the list when the counts say it is whole
    /// and it has not found it whole yet.
    fn start_reading(&mut self) -> Option<String> {
        let due = self.pager
            && self.pages
            && self.paging.is_none()
            && !self.paged_whole
            && self.users == Some(self.tally.expected);
        due.then(|| self.page_request(0, None))
    }

    fn page_request(&mut self, seen: u64, cursor: Option<&str>) -> String {
        let id = self.next_id;
        self.next_id += 1;
        self.paging = Some(Paging { id, seen });
        let mut request =
            json!({"op": "presence", "channel": self.channel, "limit": PAGE_LIMIT, "id": id});
        if let Some(cursor) = cursor {
            request["cursor"] = cursor.into();
        }
        request.to_string()
    }

    fn update_whole(&mut self, now_ms: u32) {
        let whole = self.users == Some(self.tally.expected) && (!self.pager || self.paged_whole);
        if whole != self.whole {
            self.whole = whole;
            let since = if whole { now_ms } else { NOT_WHOLE };
            self.tally.clients[self.local]
                .whole_since_ms
                .store(since, Relaxed);
        }
    }
}

impl crate::client::Observer for View<'_> {
    fn received(&mut self, payload_len: usize, now_ms: u32) {
        View::received(self, payload_len, now_ms);
    }

    fn on_text(&mut self, payload: &[u8], now_ms: u32) -> Option<String> {
        View::on_text(self, payload, now_ms)
    }

    fn ended(&mut self) {
        View::ended(self);
    }
}

#[cfg(test)]
mod tests;

//! [`Channels`]: what a [`Connector`](crate::Connector) client of the vigil
//! server needs to come back from a dropped connection without losing a
//! message. It remembers the channels the client joined (with their meta)
//! and, in a channel with history, the offset and epoch of the last message
//! received; after a reconnect, [`Channels::rejoin`] (from the resume hook)
//! joins each again with `since`, and [`Channels::observe`] (fed every
//! text message) tells the application whether the server could send
//! everything it missed, and which message it has seen already. The
//! protocol is the server's `docs/PROTOCOL.md` (Message history and
//! recovery). This is the one place vigil-ws speaks the vigil server's
//! protocol (a client-side helper; the server never uses it).
//!
//! ```no_run
//! use std::sync::Arc;
//! use vigil_ws::{Channels, CloseReason, Connection, Connector, Handler, Message, Observed, WsConfig};
//! use vigil_core::backoff::BackoffConfig;
//!
//! struct App { channels: Arc<Channels> }
//!
//! impl Handler for App {
//!     fn on_open(&self, conn: &Connection) {
//!         let _ = conn.send_text(self.channels.join("chat", None));
//!     }
//!     fn on_message(&self, _conn: &Connection, message: Message) {
//!         if let Message::Text(text) = &message {
//!             match self.channels.observe(text) {
//!                 Observed::Recovery(recovery) if !recovery.recovered => {
//!                     // Messages were lost: reload the channel's state.
//!                 }
//!                 Observed::Duplicate => return, // seen already
//!                 _ => {}
//!             }
//!             // ... handle the message
//!         }
//!     }
//!     fn on_close(&self, _conn: &Connection, _reason: CloseReason) {}
//! }
//!
//! # fn main() -> Result<(), vigil_ws::Error> {
//! let channels = Arc::new(Channels::new());
//! let rejoin = Arc::clone(&channels);
//! let app = Arc::new(App { channels });
//! let _handle = Connector::new("ws://127.0.0.1:8080/ws", WsConfig::default(), BackoffConfig::default())
//!     .on_resume(Arc::new(move |conn| rejoin.rejoin(conn)))
//!     .spawn(app)?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::Connection;

/// The channels joined, and where the client is in each.
#[derive(Debug, Default)]
pub struct Channels {
    joined: Mutex<BTreeMap<String, Joined>>,
}

#[derive(Debug, Clone, Default)]
struct Joined {
    meta: Option<Value>,
    position: Option<Position>,
    /// Whether the join in flight named a position (its reply then says
    /// whether it recovered).
    asked_since: bool,
}

/// The id of this helper's join requests, which their replies echo.
const JOIN_ID: &str = "vigil-ws:join:";

/// What [`Channels::observe`] made of a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A re-join's reply: whether every missed message follows.
    Recovery(Recovery),
    /// A message at or before the last one received in its channel's
    /// epoch: seen already, drop it.
    Duplicate,
    /// Anything else (a new message included): handle it as usual.
    Other,
}

/// The last message a client received in a channel with history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: String,
}

/// What a re-join learned: whether every missed message is on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub channel: String,
    /// Every message missed while disconnected follows, in order, once.
    pub recovered: bool,
    /// How many, when recovered.
    pub missed: Option<u64>,
    /// Why not, when not recovered (`epoch_changed`, `too_old`, `ahead`,
    /// `history_off`, `cluster`): reload the channel's state.
    pub reason: Option<String>,
}

impl Channels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `channel` (with presence `meta`) and returns the join
    /// request to send on the open connection (it asks for nothing: the
    /// connection missed nothing; [`Channels::rejoin`] does after a
    /// reconnect).
    pub fn join(&self, channel: &str, meta: Option<Value>) -> String {
        let mut joined = self.joined.lock();
        let entry = joined.entry(channel.to_owned()).or_default();
        entry.meta = meta;
        join_request(channel, entry, false)
    }

    /// Forgets `channel` (it is not joined again); returns the leave
    /// request to send.
    pub fn leave(&self, channel: &str) -> String {
        self.joined.lock().remove(channel);
        json!({"op": "leave", "channel": channel}).to_string()
    }

    /// Joins every remembered channel again on `conn`, each with the
    /// position of the last message received: the resume hook.
    pub fn rejoin(&self, conn: &Connection) {
        let requests: Vec<String> = self
            .joined
            .lock()
            .iter_mut()
            .map(|(channel, entry)| join_request(channel, entry, true))
            .collect();
        for request in requests {
            let _ = conn.send_text(request);
        }
    }

    /// Where the client is in `channel`, if it keeps history.
    pub fn position(&self, channel: &str) -> Option<Position> {
        self.joined.lock().get(channel)?.position.clone()
    }

    /// Reads a text message from the server: a message moves its channel's
    /// position (or is a duplicate); the reply to one of this helper's
    /// joins sets it, and after a re-join with a position, says whether the
    /// client recovered.
    pub fn observe(&self, text: &[u8]) -> Observed {
        let Ok(message) = serde_json::from_slice::<Value>(text) else {
            return Observed::Other;
        };
        let observed = match message["type"].as_str() {
            Some("message") => self.on_message(&message),
            Some("reply") => self.on_join_reply(&message).map(Observed::Recovery),
            _ => None,
        };
        observed.unwrap_or(Observed::Other)
    }

    fn on_message(&self, message: &Value) -> Option<Observed> {
        let channel = message["channel"].as_str()?;
        let offset = message["offset"].as_u64()?;
        let epoch = message["epoch"].as_str()?;
        let mut joined = self.joined.lock();
        let entry = joined.get_mut(channel)?;
        if let Some(at) = &entry.position
            && at.epoch == epoch
            && offset <= at.offset
        {
            return Some(Observed::Duplicate);
        }
        entry.position = Some(Position {
            offset,
            epoch: epoch.to_owned(),
        });
        None
    }

    fn on_join_reply(&self, reply: &Value) -> Option<Recovery> {
        let channel = reply["id"].as_str()?.strip_prefix(JOIN_ID)?;
        let mut joined = self.joined.lock();
        let entry = joined.get_mut(channel)?;
        let history = &reply["history"];
        let now = match (history["offset"].as_u64(), history["epoch"].as_str()) {
            (Some(offset), Some(epoch)) => Some(Position {
                offset,
                epoch: epoch.to_owned(),
            }),
            _ => None,
        };
        let asked = std::mem::take(&mut entry.asked_since);
        let recovered = reply["recovered"].as_bool();
        // A complete recovery: the missed messages follow and move the
        // position on; otherwise the channel's position now is the start
        // (never backwards within an epoch).
        let behind = match (&entry.position, &now) {
            (Some(at), Some(now)) => at.epoch == now.epoch && at.offset >= now.offset,
            _ => false,
        };
        if recovered != Some(true) && !behind && now.is_some() {
            entry.position = now;
        }
        if !asked {
            return None;
        }
        let recovered = recovered.unwrap_or(false);
        Some(Recovery {
            channel: channel.to_owned(),
            recovered,
            missed: reply["missed"]
                .as_u64()
                .filter(|_| recovered)
                .or(recovered.then_some(0)),
            reason: (!recovered)
                .then(|| reply["recovery"].as_str().unwrap_or("unknown").to_owned()),
        })
    }
}

/// A join of `channel`; with `resume`, naming the last message received.
fn join_request(channel: &str, entry: &mut Joined, resume: bool) -> String {
    let mut request =
        json!({"op": "join", "channel": channel, "id": format!("{JOIN_ID}{channel}")});
    if let Some(meta) = &entry.meta {
        request["meta"] = meta.clone();
    }
    let since = entry.position.as_ref().filter(|_| resume);
    entry.asked_since = since.is_some();
    if let Some(position) = since {
        request["since"] = json!({"offset": position.offset, "epoch": position.epoch});
    }
    request.to_string()
}

#[cfg(test)]
mod tests;

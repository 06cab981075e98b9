//! What the server does with each WebSocket connection: greet it, answer its
//! requests through the hub, close it when its token expires (unless it
//! refreshed it in time), and clean up after it. The vigil-ws handler.

use crate::admission::Ticket;
use crate::auth::{Auth, Identity};
use crate::hub::Hub;
use crate::protocol::{self, ErrorCode, Request};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_core::rate::{Bucket, RateLimit};
use vigil_ws::{CloseReason, Connection, Handler, HeartbeatMode, Message, WsConfig};

/// Protocol errors (or rate-limited requests) a connection may make in a
/// row before it is closed with 1008: one bad client must not keep the
/// server busy answering it.
const MAX_ERRORS_IN_A_ROW: u32 = 20;

/// The close code and reason of a connection whose token expired.
pub(crate) const TOKEN_EXPIRED: (u16, &str) = (4003, "token expired");

/// How often expired tokens are looked for (`exp` counts in seconds).
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The limits on what one connection may ask, shared by all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLimits {
    /// Every request.
    pub(crate) requests: RateLimit,
    /// Joins and leaves (each also counts as a request).
    pub(crate) joins: RateLimit,
    /// Publishes (each also counts as a request): each is delivered to
    /// every member of its channel.
    pub(crate) publishes: RateLimit,
}

/// What the server keeps about one open connection.
#[derive(Debug)]
struct Client {
    identity: Identity,
    /// Its place under the connection limits, given back when dropped.
    _ticket: Ticket,
    requests: Bucket,
    joins: Bucket,
    publishes: Bucket,
}

/// What the upgrade decided about a connection, kept until it opens.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) identity: Identity,
    /// The connection's place under the connection limits (server-wide
    /// and per client address), held until it ends.
    pub(crate) ticket: Ticket,
    /// How this connection is heartbeated (the client may ask).
    pub(crate) mode: HeartbeatMode,
}

pub(crate) struct Sessions {
    pub(crate) hub: Arc<Hub>,
    /// Verifies the tokens of `refresh` requests.
    auth: Arc<Auth>,
    /// When each token-bearing connection's token stops being valid:
    /// `(seconds since the Unix epoch, connection id)`, soonest first.
    expiries: parking_lot::Mutex<BTreeSet<(u64, u64)>>,
    /// The heartbeat interval and timeout advertised in the welcome message
    /// (the mode is each connection's own).
    welcome: Map<String, Value>,
    errors: parking_lot::Mutex<std::collections::HashMap<u64, u32>>,
    /// Arrivals by connection id, until their connection opens.
    pending: parking_lot::Mutex<std::collections::BTreeMap<u64, Arrival>>,
    /// Open connections by id.
    /// (Boxed: a hash map's spare capacity, up to its length again, then
    /// holds pointers rather than whole clients: ~40 bytes less for each
    /// idle connection.)
    clients: parking_lot::Mutex<std::collections::HashMap<u64, Box<Client>>>,
    limits: RequestLimits,
    /// In a cluster, the start of this node's id (anonymous user ids).
    node: Option<Arc<str>>,
}

/// An identity still pending this many connection ids later belongs to an
/// upgrade that never completed (the client left after the 101): dropped.
const PENDING_HORIZON: u64 = 100_000;

impl Sessions {
    /// `node`: in a cluster, this node's id, so that anonymous users of
    /// different nodes (numbered by connection) never share an id.
    pub(crate) fn new(
        hub: Arc<Hub>,
        auth: Arc<Auth>,
        ws: &WsConfig,
        limits: RequestLimits,
        node: Option<&str>,
    ) -> Self {
        let mut welcome = Map::new();
        welcome.insert(
            "interval_ms".into(),
            (ws.heartbeat.interval().as_millis() as u64).into(),
        );
        welcome.insert(
            "timeout_ms".into(),
            (ws.heartbeat.timeout().as_millis() as u64).into(),
        );
        Self {
            hub,
            auth,
            expiries: parking_lot::Mutex::default(),
            welcome,
            errors: parking_lot::Mutex::default(),
            pending: parking_lot::Mutex::default(),
            clients: parking_lot::Mutex::default(),
            limits,
            node: node.map(|id| Arc::from(id.get(..8).unwrap_or(id))),
        }
    }

    /// Remembers who connection `id` is, where it comes from and how it is
    /// heartbeated, until it opens.
    pub(crate) fn expect(&self, id: u64, arrival: Arrival) {
        let mut pending = self.pending.lock();
        pending.insert(id, arrival);
        // Ids only grow: anything this far behind will never open.
        let keep = pending.split_off(&id.saturating_sub(PENDING_HORIZON));
        *pending = keep;
    }

    fn allowed(&self, conn: &Connection, channel: &str) -> Result<(), (ErrorCode, String)> {
        let allowed = self
            .clients
            .lock()
            .get(&conn.id().0)
            .is_none_or(|client| client.identity.may_use(channel));
        if allowed {
            Ok(())
        } else {
            Err((
                ErrorCode::ForbiddenChannel,
                format!("your token does not allow channel {channel:?}"),
            ))
        }
    }

    fn refuse(&self, conn: &Connection, id: Option<&Value>, code: ErrorCode, message: &str) {
        let _ = conn.send_text(protocol::error(id, code, message));
        self.count_error(conn, "too many invalid requests");
    }

    /// Whether this connection was closed for abuse (its close frame may
    /// not be out yet: the close is applied after the current read).
    fn closing(&self, conn: &Connection) -> bool {
        self.errors
            .lock()
            .get(&conn.id().0)
            .is_some_and(|count| *count >= MAX_ERRORS_IN_A_ROW)
    }

    /// One more refusal in a row; at [`MAX_ERRORS_IN_A_ROW`] the
    /// connection is closed with 1008 and `reason`.
    fn count_error(&self, conn: &Connection, reason: &str) {
        let mut errors = self.errors.lock();
        let count = errors.entry(conn.id().0).or_insert(0);
        *count += 1;
        if *count >= MAX_ERRORS_IN_A_ROW {
            let _ = conn.close(1008, reason);
        }
    }

    /// Takes `request` from the connection's rate limits: `Err` with how
    /// long until it would be admitted. Joins and leaves (re-joins with new
    /// meta are joins) count against both limits: they cost every member
    /// of the channel a presence diff.
    fn take(&self, conn: &Connection, request: &Request) -> Result<(), std::time::Duration> {
        let now = tokio::time::Instant::now().into_std();
        let mut clients = self.clients.lock();
        let Some(client) = clients.get_mut(&conn.id().0) else {
            return Ok(());
        };
        let Client {
            requests,
            joins,
            publishes,
            ..
        } = &mut **client;
        let (own, limit) = match request {
            Request::Join { .. } | Request::Leave { .. } => (joins, &self.limits.joins),
            Request::Publish { .. } => (publishes, &self.limits.publishes),
            _ => return requests.take(now, &self.limits.requests),
        };
        // Checked on a copy: a request refused by the other limit must not
        // use this one up.
        let mut checked = *own;
        checked.take(now, limit)?;
        requests.take(now, &self.limits.requests)?;
        *own = checked;
        Ok(())
    }

    /// Carries out `request`; the answer to send (`None`: already queued),
    /// or the error.
    fn handle(
        &self,
        conn: &Connection,
        request: &Request,
    ) -> Result<Option<String>, (ErrorCode, String)> {
        let mut fields = Map::new();
        match request {
            Request::Join {
                channel,
                meta,
                since,
                ..
            } => {
                self.allowed(conn, channel)?;
                if let Some(meta) = meta {
                    let size = meta.to_string().len();
                    // The channel's namespace's limit (the global one by default).
                    let max = self.hub.channel_options(channel).max_meta_bytes;
                    if size > max {
                        return Err((
                            ErrorCode::MetaTooLarge,
                            format!("meta is {size} bytes of JSON; at most {max} are allowed"),
                        ));
                    }
                }
                // The hub queues the reply itself, then what was missed.
                self.hub
                    .join(conn, channel, meta.as_ref(), since.as_ref(), |fields| {
                        protocol::reply(request.id(), fields)
                    })?;
                return Ok(None);
            }
            Request::Leave { channel, .. } => self.hub.leave(conn, channel)?,
            Request::Publish { channel, data, .. } => {
                self.allowed(conn, channel)?;
                let delivered = self.hub.publish(conn, channel, data)?;
                fields.insert("delivered".into(), delivered.into());
            }
            Request::Presence {
                channel,
                cursor,
                limit,
                ..
            } => {
                self.allowed(conn, channel)?;
                let page = protocol::page_request(cursor.as_deref(), *limit)
                    .map_err(|message| (ErrorCode::InvalidPage, message))?;
                let presence = match page {
                    Some(page) => self.hub.presence_page(channel, &page, false)?,
                    None => self.hub.presence(channel),
                };
                fields.insert("presence".into(), presence);
            }
            Request::PresenceStats { channel, .. } => {
                self.allowed(conn, channel)?;
                fields.insert("stats".into(), self.hub.presence_stats(channel));
            }
            Request::History {
                channel,
                after,
                limit,
                ..
            } => {
                self.allowed(conn, channel)?;
                let limit = limit.unwrap_or(protocol::MAX_HISTORY_PAGE);
                fields.insert(
                    "history".into(),
                    self.hub.history_page(channel, *after, limit as usize)?,
                );
            }
            Request::SetWill { channel, data, .. } => {
                self.allowed(conn, channel)?;
                self.hub.set_will(conn, channel, data)?;
            }
            Request::Ping { id } => return Ok(Some(protocol::pong(id.as_ref()))),
            Request::Refresh { token, .. } => {
                let (valid_until, left) = self.refresh(conn, token)?;
                fields.insert("valid_until".into(), valid_until.into());
                fields.insert("left".into(), left.into());
            }
        }
        Ok(Some(protocol::reply(request.id(), fields)))
    }
}

impl Sessions {
    /// Replaces the connection's identity with the one `token` gives, if
    /// it names the same user: the new expiry, and the new `channels`
    /// claim (channels it no longer allows are left). Returns the new
    /// expiry and the channels left.
    fn refresh(
        &self,
        conn: &Connection,
        token: &str,
    ) -> Result<(u64, Vec<String>), (ErrorCode, String)> {
        let id = conn.id().0;
        let anonymous = self
            .clients
            .lock()
            .get(&id)
            .is_some_and(|client| client.identity.is_anonymous());
        if anonymous {
            return Err((
                ErrorCode::WrongSubject,
                "an anonymous connection cannot take a token; connect with it instead".into(),
            ));
        }
        let verified = self
            .auth
            .verify(token)
            .map_err(|refused| (ErrorCode::InvalidToken, refused.to_string()))?;
        let identity = Identity::from(verified);
        let valid_until = identity.valid_until().unwrap_or(u64::MAX);
        let (old_expiry, identity) = {
            let mut clients = self.clients.lock();
            let Some(client) = clients.get_mut(&id) else {
                return Err((ErrorCode::InvalidToken, "the connection is closing".into()));
            };
            match (&client.identity.user, &identity.user) {
                (Some(current), Some(new)) if current == new => {}
                (None, _) => {
                    return Err((
                        ErrorCode::WrongSubject,
                        "an anonymous connection cannot take a token; connect with it instead"
                            .into(),
                    ));
                }
                (Some(current), new) => {
                    return Err((
                        ErrorCode::WrongSubject,
                        format!(
                            "the token is for {:?}; this connection is {current:?}",
                            new.as_deref().unwrap_or_default()
                        ),
                    ));
                }
            }
            let old = std::mem::replace(&mut client.identity, identity.clone());
            (old.valid_until(), identity)
        };
        {
            let mut expiries = self.expiries.lock();
            if let Some(old) = old_expiry {
                expiries.remove(&(old, id));
            }
            expiries.insert((valid_until, id));
        }
        let left: Vec<String> = self
            .hub
            .channels_of(conn)
            .into_iter()
            .filter(|channel| !identity.may_use(channel))
            .filter(|channel| self.hub.leave(conn, channel).is_ok())
            .collect();
        Ok((valid_until, left))
    }

    /// Closes, with 4003, every connection whose token has expired and was
    /// not refreshed; runs until the process ends.
    pub(crate) async fn close_expired(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            for id in self.expired(now) {
                if let Some(conn) = self.hub.connection(id) {
                    let (code, reason) = TOKEN_EXPIRED;
                    let _ = conn.close(code, reason);
                }
            }
        }
    }

    /// The connections whose token stopped being valid before `now`
    /// (seconds since the Unix epoch), taken off the schedule.
    fn expired(&self, now: u64) -> Vec<u64> {
        let mut expiries = self.expiries.lock();
        let mut expired = Vec::new();
        while let Some(&(valid_until, id)) = expiries.first() {
            if valid_until >= now {
                break;
            }
            expiries.pop_first();
            expired.push(id);
        }
        expired
    }
}

impl Handler for Sessions {
    fn on_open(&self, conn: &Connection) {
        let id = conn.id().0;
        let Some(Arrival {
            identity,
            ticket,
            mode,
        }) = self.pending.lock().remove(&id)
        else {
            // Only an upgrade that `http::upgrade` admitted opens here.
            let _ = conn.close(1011, "unexpected connection");
            return;
        };
        let user = match &self.node {
            Some(node) if identity.is_anonymous() => Arc::from(format!("anon-{node}-{id}")),
            _ => identity.user_for(id),
        };
        if let Some(valid_until) = identity.valid_until() {
            self.expiries.lock().insert((valid_until, id));
        }
        self.clients.lock().insert(
            id,
            Box::new(Client {
                identity,
                _ticket: ticket,
                requests: Bucket::default(),
                joins: Bucket::default(),
                publishes: Bucket::default(),
            }),
        );
        self.hub.open(conn, Arc::clone(&user));
        let mut heartbeat = self.welcome.clone();
        heartbeat.insert("mode".into(), mode.as_str().into());
        let welcome = json!({
            "type": "welcome",
            "connection": conn.id().0,
            "user": &*user,
            "heartbeat": heartbeat,
            "version": env!("CARGO_PKG_VERSION"),
        });
        let _ = conn.send_text(welcome.to_string());
    }

    fn on_message(&self, conn: &Connection, message: Message) {
        if self.closing(conn) {
            // Closed with 1008 for abuse: the rest of what it sent in the
            // same read is not parsed, answered or counted.
            return;
        }
        let Message::Text(text) = message else {
            return self.refuse(
                conn,
                None,
                ErrorCode::BinaryNotSupported,
                "binary frames are not part of the protocol",
            );
        };
        let text = std::str::from_utf8(&text).unwrap_or_default();
        match protocol::parse(text) {
            Err((code, message, id)) => self.refuse(conn, id.as_ref(), code, &message),
            Ok(request) => match self
                .take(conn, &request)
                .map(|()| self.handle(conn, &request))
            {
                Err(retry_after) => {
                    let _ = conn.send_text(protocol::rate_limited(request.id(), retry_after));
                    self.count_error(conn, "rate limit exceeded persistently");
                }
                Ok(Ok(answer)) => {
                    self.errors.lock().remove(&conn.id().0);
                    if let Some(answer) = answer {
                        let _ = conn.send_text(answer);
                    }
                }
                Ok(Err((code, message))) => self.refuse(conn, request.id(), code, &message),
            },
        }
    }

    fn on_liveness(&self, conn: &Connection, suspect: bool) {
        self.hub.set_unstable(conn, suspect);
    }

    fn on_close(&self, conn: &Connection, reason: CloseReason) {
        self.errors.lock().remove(&conn.id().0);
        // Dropping the ticket gives its place under the limits back.
        let held = self.clients.lock().remove(&conn.id().0);
        if let Some(valid_until) = held.as_ref().and_then(|c| c.identity.valid_until()) {
            self.expiries.lock().remove(&(valid_until, conn.id().0));
        }
        drop(held);
        self.hub.close(conn, reason.is_abnormal());
    }

    fn on_upgrade_failed(&self, id: vigil_ws::ConnId) {
        // The client left between the 101 and the takeover: its place is
        // free again.
        let arrival = self.pending.lock().remove(&id.0);
        drop(arrival);
    }
}

#[cfg(test)]
mod tests {
    /// One `Client` is held per open connection, in a hash map whose
    /// capacity runs up to twice its length: its size is part of the
    /// idle-memory figure of BENCHMARKS.md.
    #[test]
    fn what_the_server_keeps_per_connection_stays_small() {
        let size = std::mem::size_of::<super::Client>();
        assert!(size <= 96, "a Client is {size} bytes");
    }
}

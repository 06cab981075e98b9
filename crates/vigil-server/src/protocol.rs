//! The JSON protocol between the vigil server and its WebSocket clients
//! (docs/PROTOCOL.md): what clients may ask, what the server says, and the
//! stable error codes. Parsing never panics and every bad request gets a
//! specific error that echoes the request's id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest channel name accepted.
pub(crate) const MAX_CHANNEL_LEN: usize = 128;

/// The most members one page of `presence` holds.
pub(crate) const MAX_PAGE: u64 = 1000;

/// Longest `cursor` accepted (a user id, as a page's `next` gave it).
const MAX_CURSOR_LEN: usize = 1024;

/// A request from a client. Every request may carry an `id`, echoed in the
/// reply or error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Request {
    /// Join a channel, optionally with presence metadata (a display name,
    /// a status): any JSON value, shown to the other members.
    Join {
        id: Option<Value>,
        channel: String,
        meta: Option<Value>,
        /// Where the client was when it dropped: the server sends what it
        /// missed since, if it still can (a channel with history).
        since: Option<Since>,
    },
    /// Leave a channel.
    Leave { id: Option<Value>, channel: String },
    /// Send `data` to every member of a channel this connection joined.
    Publish {
        id: Option<Value>,
        channel: String,
        data: Value,
    },
    /// Who is in a channel now: all of it, or (with `limit` or `cursor`)
    /// one page in user order, starting after `cursor` (the `next` of
    /// the previous page).
    Presence {
        id: Option<Value>,
        channel: String,
        cursor: Option<String>,
        limit: Option<u64>,
    },
    /// How many users and connections are in a channel, without the list.
    PresenceStats { id: Option<Value>, channel: String },
    /// The kept messages of a channel with history, oldest first: at most
    /// `limit`, with offsets after `after`.
    History {
        id: Option<Value>,
        channel: String,
        after: Option<u64>,
        limit: Option<u64>,
    },
    /// Publish `data` to `channel` if this connection ends abnormally
    /// (timeout, broken transport), never on a clean close. `data: null`
    /// clears it.
    SetWill {
        id: Option<Value>,
        channel: String,
        data: Value,
    },
    /// An application-level ping, answered at once with
    /// `{"type":"pong","id":...}` whatever the connection's heartbeat mode:
    /// how a browser's script learns that the server is alive.
    Ping { id: Option<Value> },
    /// Replaces the connection's token with a newer one for the same user
    /// (`sub`) before the old one expires; a connection whose token expires
    /// is closed with 4003.
    Refresh { id: Option<Value>, token: String },
}

impl Request {
    pub(crate) fn id(&self) -> Option<&Value> {
        match self {
            Self::Join { id, .. }
            | Self::Leave { id, .. }
            | Self::Publish { id, .. }
            | Self::Presence { id, .. }
            | Self::PresenceStats { id, .. }
            | Self::History { id, .. }
            | Self::SetWill { id, .. }
            | Self::Ping { id }
            | Self::Refresh { id, .. } => id.as_ref(),
        }
    }
}

/// A client's place in a channel's history: the offset of the last
/// message it received, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Since {
    pub(crate) offset: u64,
    pub(crate) epoch: String,
}

/// The most messages one `history` page holds (a message may be as large
/// as `--max-message-bytes`).
pub(crate) const MAX_HISTORY_PAGE: u64 = 100;

/// Stable error codes, for programs; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    /// Not JSON, or not an object.
    MalformedJson,
    /// An `op` the server does not know, or fields it does not expect.
    UnknownOp,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The channel name is empty, too long or has forbidden characters.
    InvalidChannel,
    /// Joining one more channel would exceed the per-connection limit.
    TooManyChannels,
    /// Publishing to a channel this connection has not joined.
    NotJoined,
    /// The token does not allow this channel.
    ForbiddenChannel,
    /// Over the connection's request rate; `retry_after_ms` says when.
    RateLimited,
    /// A join's `meta` is larger than `max_meta_bytes`.
    MetaTooLarge,
    /// A `refresh` whose token is not valid (expired, bad signature, ...).
    InvalidToken,
    /// A `refresh` whose token names another user than the connection's
    /// (or any user, on an anonymous connection).
    WrongSubject,
    /// A `presence` page whose `limit` is 0 or over [`MAX_PAGE`], or
    /// whose `cursor` is empty or too long.
    InvalidPage,
    /// A join of a channel that has its namespace's `max_members` users.
    ChannelFull,
    /// A client's publish to a channel whose namespace says
    /// `client_publish = false`.
    PublishForbidden,
    /// A page of the members of a `counts` channel, which never lists them.
    PresenceHidden,
    /// A `history` request for a channel that keeps none (its namespace
    /// has no `history_size`, or the server runs in a cluster).
    HistoryOff,
}

/// One page of a channel's members: after `after`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub(crate) after: Option<String>,
    pub(crate) limit: usize,
}

/// The page a `presence` request (or API call) asks for: `None` for the
/// whole list (neither field given), else the page, `MAX_PAGE` long
/// unless `limit` says less.
pub(crate) fn page_request(
    cursor: Option<&str>,
    limit: Option<u64>,
) -> Result<Option<PageRequest>, String> {
    if cursor.is_none() && limit.is_none() {
        return Ok(None);
    }
    let limit = limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(format!("limit is 1 to {MAX_PAGE} members; got {limit}"));
    }
    if let Some(cursor) = cursor
        && (cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN)
    {
        return Err(format!(
            "cursor is the `next` of the previous page (1 to {MAX_CURSOR_LEN} bytes); got {} bytes",
            cursor.len()
        ));
    }
    Ok(Some(PageRequest {
        after: cursor.map(str::to_owned),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    }))
}

/// Checks a channel name: 1 to 128 characters from `A-Z a-z 0-9 _ - . : /`.
pub(crate) fn check_channel(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
        return Err(format!(
            "channel names are 1 to {MAX_CHANNEL_LEN} characters long; got {}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !is_channel_char(c)) {
        return Err(format!(
            "channel names use letters, digits and _ - . : / only; {bad:?} is not allowed"
        ));
    }
    Ok(())
}

/// Whether `c` may occur in a channel name.
pub(crate) fn is_channel_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

/// Parses a text frame into a request, or the error to answer with (and the
/// id, when the frame was JSON enough to carry one).
pub(crate) fn parse(text: &str) -> Result<Request, (ErrorCode, String, Option<Value>)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            ErrorCode::MalformedJson,
            format!("not valid JSON: {e}"),
            None,
        )
    })?;
    let id = value.get("id").cloned();
    if !value.is_object() {
        return Err((
            ErrorCode::MalformedJson,
            "a request is a JSON object".into(),
            id,
        ));
    }
    let request: Request = serde_json::from_value(value).map_err(|e| {
        (
            ErrorCode::UnknownOp,
            format!("not a request this server understands: {e}"),
            id.clone(),
        )
    })?;
    match &request {
        Request::Join { channel, .. }
        | Request::Leave { channel, .. }
        | Request::Publish { channel, .. }
        | Request::Presence { channel, .. }
        | Request::PresenceStats { channel, .. }
        | Request::History { channel, .. }
        | Request::SetWill { channel, .. } => {
            check_channel(channel)
                .map_err(|message| (ErrorCode::InvalidChannel, message, id.clone()))?;
        }
        Request::Ping { .. } | Request::Refresh { .. } => {}
    }
    if let Request::Presence { cursor, limit, .. } = &request {
        page_request(cursor.as_deref(), *limit)
            .map_err(|message| (ErrorCode::InvalidPage, message, id.clone()))?;
    }
    if let Request::History {
        limit: Some(limit), ..
    } = &request
        && !(1..=MAX_HISTORY_PAGE).contains(limit)
    {
        return Err((
            ErrorCode::InvalidPage,
            format!("limit is 1 to {MAX_HISTORY_PAGE} messages; got {limit}"),
            id,
        ));
    }
    Ok(request)
}

/// An error event.
pub(crate) fn error(id: Option<&Value>, code: ErrorCode, message: &str) -> String {
    serde_json::json!({"type": "error", "id": id, "code": code, "message": message}).to_string()
}

/// A `rate_limited` error: the request was not carried out; one would be
/// after `retry_after`.
pub(crate) fn rate_limited(id: Option<&Value>, retry_after: std::time::Duration) -> String {
    let millis = u64::try_from(retry_after.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    serde_json::json!({
        "type": "error",
        "id": id,
        "code": ErrorCode::RateLimited,
        "message": format!("too many requests; try again in {millis} ms"),
        "retry_after_ms": millis,
    })
    .to_string()
}

/// The answer to an application-level ping.
pub(crate) fn pong(id: Option<&Value>) -> String {
    serde_json::json!({"type": "pong", "id": id}).to_string()
}

/// A successful reply to request `id`, with extra fields.
pub(crate) fn reply(id: Option<&Value>, mut fields: serde_json::Map<String, Value>) -> String {
    fields.insert("type".into(), "reply".into());
    fields.insert("id".into(), id.cloned().unwrap_or(Value::Null));
    Value::Object(fields).to_string()
}

#[cfg(test)]
mod tests;

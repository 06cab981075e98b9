//! vigil-ws drives vigil-core's heartbeat machine over real WebSockets
//! (tokio, hyper 1, fastwebsockets), for embedders and for the vigil server.
//!
//! - [`WsServer`] takes upgraded connections from your hyper or axum
//!   service ([`WsServer::upgrade`]) and runs them on shard threads: every
//!   connection is pinged when silent, closed when dead within
//!   `interval + timeout`, protected against slow consumers and bad frames,
//!   and reported to your [`Handler`] with a [`CloseReason`].
//! - [`Connector`] is the client side: it heartbeats its server, reconnects
//!   with jittered exponential backoff and calls a resume hook; with
//!   [`Channels`] a client of the vigil server re-joins its channels there
//!   and gets every message it missed.
//!
//! An idle connection costs its socket, its heartbeat machine and a timer
//! wheel entry: no task, no timer, no channel and no buffer of its own.

mod apptext;
mod channels;
mod client;
pub mod codec;
mod config;
mod error;
mod handler;
mod metrics;
mod ping_limit;
mod server;
mod shard;
pub mod tls;
pub mod upgrade;

pub use channels::{Channels, Observed, Position, Recovery};
pub use client::{Connector, ConnectorHandle, ResumeHook};
pub use config::{HeartbeatMode, WsConfig};
pub use error::Error;
pub use handler::{CloseReason, ConnId, Connection, Handler, Liveness, Message, SendError};
pub use metrics::{CLOSE_LABELS, Histogram, Metrics, RTT_BOUNDS_US, TIMER_LAG_BOUNDS_US};
pub use ping_limit::PingLimit;
pub use server::WsServer;
pub use shard::transport::Stream;

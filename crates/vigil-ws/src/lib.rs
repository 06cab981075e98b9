//! vigil-ws drives vigil-core's heartbeat machine over real WebSockets (tokio,
//! hyper 1, fastwebsockets): server upgrade, the per-connection driver and a
//! reconnecting client connector.
//!
//! This crate is filled by issue #3. Until then it exposes nothing, so no
//! caller can mistake it for a working transport.

//! Integration tests of vigil-ws over real loopback sockets: heartbeats,
//! protocol errors, backpressure, half-open peers, starvation, the limit on
//! a peer's own pings and the reconnecting client. Time bounds are
//! generous: the machine is shared.

mod axum;
mod backpressure;
mod close;
mod half_open;
mod heartbeat;
mod ping_limit;
mod protocol;
mod reconnect;
mod streams;
mod support;
mod tls;
mod tls_shard;

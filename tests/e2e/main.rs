//! End-to-end tests: each starts a real binary built by `cargo build
//! --workspace --bins` (`cargo xtask test` builds them first) and checks what
//! a user would see.

mod authorization;
mod cli;
mod dashboard;
mod fairness;
mod files;
mod history;
mod http_details;
mod limits;
mod namespaces;
mod observability;
mod presence_pages;
mod proxies;
mod rate_limits;
mod session;
mod tls;
mod tokens;

//! `cargo xtask interop`: vigil against clients no one here wrote. Installs
//! the toolchains of the examples in `tests/interop/clients/` under
//! `target/interop/` (Python `websockets` with pip, Node `ws` with npm, Go
//! gorilla/websocket from Debian packages, see `install.rs`), then runs the
//! `interop` tests of `tests/` with `VIGIL_INTEROP_*` variables saying
//! where. `cargo xtask test` installs the same way before its workspace
//! tests, which include these.

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    cmd::{self, cargo, project_root},
    install::{self, WEBSOCKETS_PIP, WS_NPM},
};

/// Installs (idempotently) what the interop tests run, and builds the Go
/// example, so [`test_env`] points at something fresh.
pub(crate) fn install() -> Result<()> {
    let dir = interop_dir();
    install::pip_package(&dir.join("python"), "websockets", WEBSOCKETS_PIP)?;
    install::npm_package(&dir.join("node"), "ws", WS_NPM)?;
    let go = dir.join("go");
    std::fs::create_dir_all(&go)?;
    install::go_program(
        &project_root().join("tests/interop/clients/go/main.go"),
        &go.join("client"),
    )
}

/// The variables the interop tests read to find the toolchains.
pub(crate) fn test_env() -> [(&'static str, PathBuf); 3] {
    let dir = interop_dir();
    [
        ("VIGIL_INTEROP_PYTHONPATH", dir.join("python")),
        ("VIGIL_INTEROP_NODE_DIR", dir.join("node")),
        ("VIGIL_INTEROP_GO_CLIENT", dir.join("go/client")),
    ]
}

/// `cargo xtask interop`: install, build the server, run the tests.
pub(crate) fn run() -> Result<()> {
    install()?;
    cmd::run(cargo().args(["build", "-p", "vigil-server", "--bin", "vigil", "--locked"]))?;
    cmd::run(
        cargo()
            .args(["test", "-p", "vigil-e2e", "--test", "interop", "--locked"])
            .envs(test_env()),
    )
}

fn interop_dir() -> PathBuf {
    project_root().join("target/interop")
}

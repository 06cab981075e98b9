//! A misbehaving client for the hostile-client tests: it sends the same
//! requests as fast as the socket takes them, and reads (and drops)
//! whatever comes back so the server never sees it as a slow consumer.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One flooding connection, running on its own threads until `stop` or
/// until its time is up.
#[derive(Debug)]
pub struct Flooder {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<u64>>,
    stream: TcpStream,
}

impl Flooder {
    /// Upgrades a connection to `addr`'s `/ws` (after `prefix`, which may
    /// be empty) and sends `requests` (JSON texts) round and round for at
    /// most `duration`.
    #[track_caller]
    pub fn start(addr: SocketAddr, requests: &[String], duration: Duration) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("handshake");
        // A batch of masked frames, written with one call each time.
        let mut batch = Vec::new();
        for _ in 0..64 {
            for text in requests {
                batch.extend_from_slice(&crate::ws_client::masked_frame(0x81, text.as_bytes()));
            }
        }
        let per_batch = 64 * requests.len() as u64;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut write_half = stream.try_clone().expect("clone");
        let mut read_half = stream.try_clone().expect("clone");
        let writer = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                let deadline = Instant::now() + duration;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if write_half.write_all(&batch).is_err() {
                        break;
                    }
                    sent.fetch_add(per_batch, Ordering::Relaxed);
                }
            })
        };
        let reader = std::thread::spawn(move || {
            let mut chunk = vec![0u8; 256 << 10];
            let mut total = 0u64;
            while let Ok(n) = read_half.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        });
        Self {
            stop,
            sent,
            writer: Some(writer),
            reader: Some(reader),
            stream,
        }
    }

    /// Requests written so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits for the flood to end (its duration, or the server closing
    /// it); returns the requests written and the bytes read back.
    pub fn finish(mut self) -> (u64, u64) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        let read = self
            .reader
            .take()
            .map_or(0, |reader| reader.join().unwrap_or(0));
        (self.sent(), read)
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

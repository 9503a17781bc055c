//! Shared test utilities: unique socket paths, bounded waits, a scripted raw peer.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ggipc::codec::{FrameDecoder, Limits, Message};
use ggipc::rpc::{MessageType, RpcMessage, FLAG_CONNECTION_ACCEPTED};

/// A socket path no other test uses (per process and counter), under the temp dir.
pub fn unique_socket_path(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ggipc-t-{}-{name}-{n}.sock", std::process::id()))
}

/// Receives one item within `within`, or panics naming what was awaited.
#[track_caller]
pub fn expect_within<T>(rx: &Receiver<T>, within: Duration, what: &str) -> T {
    match rx.recv_timeout(within) {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {within:?}"),
    }
}

/// Waits until `condition` holds, polling, or panics after `within`.
#[track_caller]
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() > deadline {
            panic!("{what}: not true within {within:?}");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` and panics if it takes longer than `bound` (measures a hang, not a speed).
#[track_caller]
pub fn returns_within<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    assert!(took <= bound, "{what} took {took:?}, bound {bound:?}");
    value
}

/// A raw server speaking frames by hand: accepts one connection and runs `script` on it.
pub struct ScriptedPeer {
    pub path: PathBuf,
    handle: Option<JoinHandle<()>>,
}

impl ScriptedPeer {
    pub fn start(name: &str, script: impl FnOnce(UnixStream) + Send + 'static) -> ScriptedPeer {
        let path = unique_socket_path(name);
        let listener = UnixListener::bind(&path).expect("bind scripted peer");
        let handle = thread::spawn(move || {
            if let Ok((socket, _)) = listener.accept() {
                socket.set_read_timeout(Some(Duration::from_secs(10))).ok();
                script(socket);
            }
        });
        ScriptedPeer {
            path,
            handle: Some(handle),
        }
    }

    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            h.join().expect("scripted peer panicked");
        }
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one whole message from a raw socket (bounded by the socket's read timeout).
pub fn read_message(socket: &mut UnixStream, decoder: &mut FrameDecoder) -> Option<RpcMessage> {
    loop {
        if let Some(frame) = decoder.next_message().expect("peer decode") {
            return Some(RpcMessage::from_frame(frame).expect("peer rpc"));
        }
        let mut buf = [0u8; 4096];
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.extend(&buf[..n]),
        }
    }
}

/// Reads and discards until the client closes the socket (bounded by the socket's read
/// timeout): keeps a scripted peer's end open exactly as long as the client needs it.
pub fn read_to_end(mut socket: UnixStream) {
    let mut buf = [0u8; 4096];
    while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
}

pub fn write_message(socket: &mut UnixStream, message: &RpcMessage) {
    let bytes = message
        .to_frame()
        .to_bytes(&Limits::default())
        .expect("encode");
    socket.write_all(&bytes).expect("peer write");
}

pub fn write_frame(socket: &mut UnixStream, frame: &Message) {
    socket
        .write_all(&frame.to_bytes(&Limits::default()).expect("encode"))
        .expect("peer write");
}

/// Reads CONNECT and answers an accepted CONNECT_ACK; returns the CONNECT.
pub fn accept_handshake(socket: &mut UnixStream, decoder: &mut FrameDecoder) -> RpcMessage {
    let connect = read_message(socket, decoder).expect("CONNECT");
    assert_eq!(connect.message_type, MessageType::Connect);
    write_message(
        socket,
        &RpcMessage::new(MessageType::ConnectAck, FLAG_CONNECTION_ACCEPTED, 0),
    );
    connect
}

/// Names of this process's threads (from /proc), for leak checks.
pub fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc/self/task") {
        for entry in entries.flatten() {
            if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
                names.push(name.trim().to_owned());
            }
        }
    }
    names
}

/// Threads of the client (I/O and handler pool), not of the emulator.
pub fn ggipc_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("ggipc-") && !n.starts_with("ggipc-emu"))
        .count()
}

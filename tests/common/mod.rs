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

/// Runs `f` and panics if it took longer than `bound` (a generous bound on a call that
/// returns, not a speed). It cannot end a call that never returns: for that, use
/// [`finishes_within`].
#[track_caller]
pub fn returns_within<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    assert!(took <= bound, "{what} took {took:?}, bound {bound:?}");
    value
}

/// Runs `f` on its own thread and panics if it has not returned within `bound`: unlike
/// [`returns_within`], this bounds a hang (the stuck thread is left behind; the test
/// process ends it).
#[track_caller]
pub fn finishes_within<T: Send + 'static>(
    bound: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound) {
        Ok(value) => value,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {bound:?}")
        }
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            panic!("{what}: panicked (its message is above)")
        }
    }
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

/// The target triples this test binary may have been built for, among the Linux targets
/// ggipc is tested on (stable `cfg` cannot tell armv7 from armv6, so both are listed).
pub fn target_triples() -> &'static [&'static str] {
    let gnu = cfg!(all(target_os = "linux", target_env = "gnu"));
    let musl = cfg!(all(target_os = "linux", target_env = "musl"));
    let hf = cfg!(target_abi = "eabihf");
    if cfg!(target_arch = "x86_64") && gnu {
        &["x86_64-unknown-linux-gnu"]
    } else if cfg!(target_arch = "x86_64") && musl {
        &["x86_64-unknown-linux-musl"]
    } else if cfg!(target_arch = "aarch64") && gnu {
        &["aarch64-unknown-linux-gnu"]
    } else if cfg!(target_arch = "aarch64") && musl {
        &["aarch64-unknown-linux-musl"]
    } else if cfg!(target_arch = "arm") && gnu && hf {
        &[
            "armv7-unknown-linux-gnueabihf",
            "arm-unknown-linux-gnueabihf",
        ]
    } else if cfg!(target_arch = "arm") && gnu {
        &["armv7-unknown-linux-gnueabi", "arm-unknown-linux-gnueabi"]
    } else if cfg!(target_arch = "arm") && musl && hf {
        &[
            "armv7-unknown-linux-musleabihf",
            "arm-unknown-linux-musleabihf",
        ]
    } else {
        &[]
    }
}

/// The cargo target runner for this test binary's target, from
/// `CARGO_TARGET_<TRIPLE>_RUNNER` (split on whitespace, as cargo does), e.g.
/// `qemu-arm -L /usr/arm-linux-gnueabihf` when cross-testing under qemu-user.
///
/// Cargo runs the test binary through the runner but does not tell it; the environment
/// variable is inherited, so it is read here. A runner set only in a `.cargo/config.toml`
/// is not visible to the test process: set it in the environment (as `.ci/cross` does).
pub fn target_runner() -> Option<Vec<String>> {
    target_triples().iter().find_map(|triple| {
        let key = format!(
            "CARGO_TARGET_{}_RUNNER",
            triple.to_uppercase().replace('-', "_")
        );
        let words: Vec<String> = std::env::var(key)
            .ok()?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        (!words.is_empty()).then_some(words)
    })
}

/// A command that runs `program`, a binary built for this test's target (an example, the
/// emulator), through the cargo target runner when one is set, else directly. Without it,
/// a test running under qemu-user could not start an ARM binary (the kernel refuses the
/// `execve` with ENOEXEC unless binfmt_misc is set up).
pub fn target_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    match target_runner() {
        Some(runner) => {
            let mut cmd = std::process::Command::new(&runner[0]);
            cmd.args(&runner[1..]).arg(program);
            cmd
        }
        None => std::process::Command::new(program),
    }
}

/// The project's shared folder (`spec/`, `vectors/`): `$GGIPC_SHARED_DIR` when set (the
/// `shared` folder itself or its `vectors` subfolder), else `shared` beside the clone, i.e.
/// `../shared` from the crate root (looked up in each ancestor of the crate root, so a
/// checkout nested one level deeper also finds it). `None` when nothing is found.
pub fn shared_dir() -> Option<PathBuf> {
    let is_shared =
        |dir: &std::path::Path| dir.join("spec").is_dir() || dir.join("vectors").is_dir();
    if let Some(configured) = std::env::var_os("GGIPC_SHARED_DIR").map(PathBuf::from) {
        if configured.join("eventstream").is_dir() && !is_shared(&configured) {
            // GGIPC_SHARED_DIR named the `vectors` folder.
            return configured.parent().map(|p| p.to_path_buf());
        }
        return is_shared(&configured).then_some(configured);
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared"))
        .find(|dir| is_shared(dir))
}

/// The tests' one pseudo-random generator: splitmix64, seeded by the caller (so that a
/// failing fuzz run is reproduced by its seed). Small, fast, good enough for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A length skewed towards small values, sometimes up to `max`.
    pub fn len(&mut self, small: usize, max: usize) -> usize {
        if self.chance(20) {
            self.range(0, max)
        } else {
            self.range(0, small.min(max))
        }
    }
}

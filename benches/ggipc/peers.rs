//! Processes outside the bench: the `ggipc-emulator` binary every contender of the
//! side-by-side group connects to, and the contender processes (the greengrass-ipc-rust
//! and C SDK peers under `benches/peers/`, the official Python client) driven over the
//! line protocol of `benches/peers/protocol.rs`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};

use crate::support::{socket_path, Rng, Settings, AUTH_TOKEN_ENV, PAYLOAD, SOCKET_PATH_ENV};

/// How long a contender may take to connect and say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The release `ggipc-emulator` binary in its own process, serving one permissive
/// component. It runs with `GGIPC_LOG=warn`: at the default level it logs every call to
/// stderr, which would bill the log to the emulator.
pub struct EmulatorProcess {
    child: Child,
    pub socket: PathBuf,
    pub token: String,
}

impl EmulatorProcess {
    /// Starts `target/release/ggipc-emulator` (built by `prepare.sh emulator`), or the
    /// binary `GGIPC_BENCH_EMULATOR` names (to compare emulator builds; the setup line
    /// says which ran), with the flags in `GGIPC_BENCH_EMULATOR_ARGS` if set (split at
    /// whitespace; the setup line says which), and waits (at most 10 s) until its socket
    /// accepts connections.
    pub fn start(s: &Settings) -> Result<EmulatorProcess, String> {
        let bin = match std::env::var_os("GGIPC_BENCH_EMULATOR") {
            Some(path) => PathBuf::from(path),
            None => s.release_dir().join("ggipc-emulator"),
        };
        let socket = socket_path("emulator-process");
        let _ = std::fs::remove_file(&socket);
        let token = format!("bench{:016x}", Rng::seed_from_entropy());
        let log = File::create(s.out_dir.join("emulator.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg("--socket")
            .arg(&socket)
            .arg("--svcuid")
            .arg(&token)
            .args(emulator_args())
            .env("GGIPC_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut emu = EmulatorProcess {
            child,
            socket,
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if UnixStream::connect(&emu.socket).is_ok() {
                return Ok(emu);
            }
            if let Ok(Some(status)) = emu.child.try_wait() {
                return Err(format!("ggipc-emulator exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err("ggipc-emulator did not listen within 10 s".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, for `ps`/`perf` while the bench runs.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The emulator's flags from `GGIPC_BENCH_EMULATOR_ARGS` (none by default).
pub fn emulator_args() -> Vec<String> {
    std::env::var("GGIPC_BENCH_EMULATOR_ARGS")
        .map(|args| args.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A contender process speaking the bench's line protocol.
pub struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Words after `ready` (the Python peer reports its awsiotsdk version there).
    pub ready_words: Vec<String>,
}

impl PeerProcess {
    /// Spawns `command` connected to `emu`, its stderr to `log`, and waits for `ready`.
    pub fn spawn(
        mut command: Command,
        emu: &EmulatorProcess,
        log: &Path,
    ) -> Result<PeerProcess, String> {
        let log = File::create(log).map_err(|e| e.to_string())?;
        let mut child = command
            .env(SOCKET_PATH_ENV, &emu.socket)
            .env(AUTH_TOKEN_ENV, &emu.token)
            .env("BENCH_PAYLOAD", PAYLOAD.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start: {e}"))?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            let _ = child.kill();
            return Err("no pipes to the contender".into());
        };
        let (tx, lines) = unbounded();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = PeerProcess {
            child,
            stdin,
            lines,
            ready_words: Vec::new(),
        };
        peer.ready_words = peer.expect("ready", READY_TIMEOUT)?;
        Ok(peer)
    }

    /// Sends one command and waits (at most `timeout`) for its answer: the words after
    /// the answer's first word, which is the command's.
    pub fn ask(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let word = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        writeln!(self.stdin, "{command}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("the contender is gone ({e})"))?;
        self.expect(&word, timeout)
    }

    fn expect(&mut self, word: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no `{word}` answer within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("the contender exited before `{word}`"))
                }
            };
            let mut parts = line.split_whitespace().map(str::to_owned);
            match parts.next() {
                Some(w) if w == word => return Ok(parts.collect()),
                Some(w) if w == "error" => return Err(line),
                _ => eprintln!("  (contender says: {line})"),
            }
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The `ggipc-emulator` binary as a user runs it: `--env-file` (written atomically once the
//! socket accepts connections, a stale file replaced, removed at exit) and its log on stderr
//! (each call with component, operation, resources and outcome; a denial with its reason;
//! connects and disconnects; publishes to the cloud stand-in; an empty SVCUID named as such).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ggipc::model::{GetConfigurationRequest, PublishToIoTCoreRequest, PublishToTopicRequest, Qos};
use ggipc::{Client, Error};

const RECIPE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/emulator/com.example.HelloWorld.yaml"
);
const SECRETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/emulator/secrets.json"
);

/// The binary as a child process, its stderr collected line by line.
struct Emu {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Emu {
    fn start(socket: &Path, env_file: &Path) -> Emu {
        Emu::start_with(socket, env_file, &[])
    }

    /// [`Emu::start`] with more flags.
    fn start_with(socket: &Path, env_file: &Path, flags: &[&str]) -> Emu {
        let mut child = target_command(env!("CARGO_BIN_EXE_ggipc-emulator"))
            .arg("--socket")
            .arg(socket)
            .arg("--env-file")
            .arg(env_file)
            .args(["--recipe", RECIPE, "--secrets", SECRETS])
            .args(flags)
            .env_remove("RUST_LOG")
            .env("GGIPC_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ggipc-emulator");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Emu { child, log }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing every one of `parts`.
    fn wait_for_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self
                .log()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?} within 5 s; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the emulator did not exit within 5 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh folder for this test's env file.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ggipc-emubin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits (bounded) for `path` to exist, then reads it.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} not written within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::read_to_string(path).unwrap()
}

/// The value of `export NAME=...` (single-quoted or bare) in `exports`.
fn export_value(exports: &str, name: &str) -> String {
    let line = exports
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")))
        .unwrap_or_else(|| panic!("no export {name} in {exports:?}"));
    line.trim_matches('\'').to_owned()
}

#[test]
fn env_file_replaces_a_stale_file_and_is_whole_once_the_socket_accepts() {
    let dir = scratch("env");
    let env_file = dir.join("env.sh");
    std::fs::write(&env_file, "export SVCUID=stale-from-an-earlier-run\n").unwrap();
    let socket = unique_socket_path("emubin-env");
    let emu = Emu::start(&socket, &env_file);
    // The stale file is removed at start: wait until a file without the stale token appears.
    let deadline = Instant::now() + Duration::from_secs(10);
    let exports = loop {
        let text = std::fs::read_to_string(&env_file).unwrap_or_default();
        if !text.is_empty() && !text.contains("stale-from-an-earlier-run") {
            break text;
        }
        assert!(Instant::now() < deadline, "no fresh env file within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        export_value(&exports, ggipc::SOCKET_PATH_ENV),
        socket.display().to_string()
    );
    let token = export_value(&exports, ggipc::AUTH_TOKEN_ENV);
    assert!(!token.is_empty(), "{exports}");
    // The moment the file exists, a client connects: no retry.
    let client = Client::builder()
        .socket_path(&socket)
        .auth_token(&token)
        .connect()
        .unwrap();
    assert!(client.is_connected());
    client.close();
    // No temp file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["env.sh".to_owned()]);
    assert!(emu.stop().success());
    assert!(!env_file.exists(), "the env file outlived the emulator");
    assert!(!socket.exists(), "the socket outlived the emulator");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_log_shows_calls_with_resources_denials_with_reasons_connects_and_disconnects() {
    let dir = scratch("log");
    let env_file = dir.join("env.sh");
    let socket = unique_socket_path("emubin-log");
    let emu = Emu::start(&socket, &env_file);
    let exports = wait_for_file(&env_file);
    let token = export_value(&exports, ggipc::AUTH_TOKEN_ENV);
    let client = Client::builder()
        .socket_path(&socket)
        .auth_token(&token)
        .connect()
        .unwrap();
    let component = "com.example.HelloWorld";
    emu.wait_for_line(&[component, "connected"]);

    client
        .get_configuration(GetConfigurationRequest::new(vec!["Message".to_owned()]))
        .unwrap();
    let line = emu.wait_for_line(&[component, "GetConfiguration", "-> ok"]);
    assert!(line.contains("Message"), "{line}");

    client
        .publish_to_topic(PublishToTopicRequest::json(
            "hello",
            serde_json::json!({"n": 1}),
        ))
        .unwrap();
    emu.wait_for_line(&[component, "PublishToTopic", "\"hello\"", "-> ok"]);

    // Allowed to the cloud under hello/*: logged as a call and as a cloud publish with size.
    client
        .publish_to_iot_core(
            PublishToIoTCoreRequest::new("hello/cloud", Qos::AtLeastOnce)
                .with_payload(b"12345".to_vec()),
        )
        .unwrap();
    emu.wait_for_line(&[component, "PublishToIoTCore", "hello/cloud", "-> ok"]);
    emu.wait_for_line(&[component, "cloud", "hello/cloud", "5 bytes"]);

    // Denied: the recipe grants PublishToIoTCore on hello/* only.
    let err = client
        .publish_to_iot_core(
            PublishToIoTCoreRequest::new("elsewhere/x", Qos::AtLeastOnce)
                .with_payload(b"x".to_vec()),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Service(_)), "{err:?}");
    let line = emu.wait_for_line(&[component, "PublishToIoTCore", "elsewhere/x", "Unauthorized"]);
    // The reason follows the outcome: more than the error type alone.
    let reason = line.split("UnauthorizedError").nth(1).unwrap_or_default();
    assert!(
        reason.trim_start_matches(':').trim().len() > 10,
        "no reason in {line:?}"
    );

    client.close();
    emu.wait_for_line(&[component, "disconnected"]);
    // No doubled prefix.
    let log = emu.log();
    assert!(
        log.iter().all(|l| !l.contains("emulator: ")),
        "doubled prefix in:\n{}",
        log.join("\n")
    );
    assert!(emu.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_empty_svcuid_is_reported_as_empty() {
    let dir = scratch("empty");
    let env_file = dir.join("env.sh");
    let socket = unique_socket_path("emubin-empty");
    let emu = Emu::start(&socket, &env_file);
    wait_for_file(&env_file);
    let result = Client::builder()
        .socket_path(&socket)
        .auth_token("")
        .connect();
    assert!(result.is_err(), "an empty token was accepted");
    emu.wait_for_line(&["refused", "empty"]);
    assert!(emu.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A script that removes the emulator's folder before stopping it (as `ab.sh`'s cleanup
/// did) used to leave the process running: it woke its accept loop by connecting to the
/// socket file, which was gone.
#[test]
fn sigterm_stops_the_binary_after_its_socket_file_is_removed() {
    let dir = scratch("gone");
    let (socket, env_file) = (dir.join("emulator.sock"), dir.join("env.sh"));
    let emu = Emu::start(&socket, &env_file);
    wait_for_file(&env_file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(emu.stop().success());
}

/// `--busy-poll D`: served with it (and with `0`, no poll); more than 10 ms, or not a
/// duration, refused at once; durations past a day refused for every flag.
#[test]
fn busy_poll_serves_calls_and_bad_values_are_refused() {
    for poll in ["50us", "0"] {
        let dir = scratch("poll");
        let env_file = dir.join("env.sh");
        let socket = unique_socket_path("emubin-poll");
        let emu = Emu::start_with(&socket, &env_file, &["--busy-poll", poll]);
        let exports = wait_for_file(&env_file);
        let client = Client::builder()
            .socket_path(&socket)
            .auth_token(export_value(&exports, ggipc::AUTH_TOKEN_ENV))
            .connect()
            .unwrap();
        for i in 0..200 {
            client
                .publish_to_topic(PublishToTopicRequest::json("polled", serde_json::json!(i)))
                .unwrap();
        }
        drop(client);
        assert!(emu.stop().success(), "--busy-poll {poll}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    for (flag, value, code, says) in [
        ("--busy-poll", "20ms", 1, "at most 10ms"),
        ("--busy-poll", "90000us", 1, "at most 10ms"),
        ("--busy-poll", "x", 2, "not a duration"),
        ("--busy-poll", "-5us", 2, "not a duration"),
        ("--write-timeout", "0", 2, "more than zero"),
        ("--write-timeout", "86401", 2, "not a duration"),
    ] {
        let output = finishes_within(Duration::from_secs(10), "a refused duration", {
            let (flag, value) = (flag.to_owned(), value.to_owned());
            move || {
                target_command(env!("CARGO_BIN_EXE_ggipc-emulator"))
                    .args([flag, value])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run ggipc-emulator")
            }
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}

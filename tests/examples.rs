//! The examples work as their docs say (cargo builds them before running tests). Each runs
//! through the cargo target runner when one is set (`common::target_command`), so these tests
//! also pass when cross-testing under qemu-user.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ggipc::emulator::Emulator;

/// `target/<profile>/examples/<name>`, next to this test's `deps/` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        dir.exists(),
        "example {name} not built at {}",
        dir.display()
    );
    dir
}

fn run_with_timeout(cmd: &mut Command, within: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    expect_within(&rx, within, "example process").unwrap()
}

#[test]
fn quickstart_runs_and_exits_zero() {
    let out = run_with_timeout(
        &mut target_command(example("quickstart")),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("received on quickstart/binary: hello, binary"),
        "{stdout}"
    );
}

#[test]
fn publish_and_subscribe_examples_talk_through_the_emulator() {
    let emu = Emulator::start().unwrap();
    let env = |cmd: &mut Command| {
        cmd.env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
            .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token());
    };
    let mut sub = target_command(example("subscribe"));
    sub.args(["demo/t", "--count", "2"]);
    env(&mut sub);
    let child = sub
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "subscribe example subscribed",
        || emu.subscription_count() == 1,
    );
    for message in [r#"{"a": [1, 2]}"#, "plain text"] {
        let mut publish = target_command(example("publish"));
        publish.args(["demo/t", message]);
        env(&mut publish);
        let out = run_with_timeout(&mut publish, Duration::from_secs(10));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = expect_within(&rx, Duration::from_secs(10), "subscribe example exit").unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"a\":[1,2]}\nplain text\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "subscribed to demo/t\n"
    );
}

#[test]
fn publish_example_reports_errors_and_exits_non_zero() {
    let emu = Emulator::start().unwrap();
    let mut publish = target_command(example("publish"));
    publish
        .args(["bad/+", "x"])
        .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
        .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token());
    let out = run_with_timeout(&mut publish, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgumentsError"));
    let mut no_env = target_command(example("publish"));
    no_env
        .args(["t", "x"])
        .env_remove(ggipc::SOCKET_PATH_ENV)
        .env_remove(ggipc::AUTH_TOKEN_ENV);
    let out = run_with_timeout(&mut no_env, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"));
}

#[test]
fn publish_and_subscribe_examples_print_their_usage_for_help() {
    for (name, args) in [
        ("subscribe", &["--help"][..]),
        ("subscribe", &["-h"][..]),
        ("subscribe", &["t", "--count"][..]),
        ("publish", &["--help"][..]),
    ] {
        // No socket: the usage must come before any connection attempt.
        let mut command = target_command(example(name));
        command
            .args(args)
            .env_remove(ggipc::SOCKET_PATH_ENV)
            .env_remove(ggipc::AUTH_TOKEN_ENV);
        let out = run_with_timeout(&mut command, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("usage: {name} <topic>")),
            "{name} {args:?}: {stderr}"
        );
    }
}

/// The subscribe example, started without `--count`, and the lines of its stderr.
struct Subscriber {
    child: std::process::Child,
    stderr: crossbeam_channel::Receiver<String>,
}

/// Starts the subscribe example without `--count` against `emu`; returns once it says it
/// has subscribed, i.e. its subscribe call has returned (it catches signals before it
/// subscribes). The emulator counts a subscription before its response is written: a
/// stop at that point would fail the subscribe call itself.
fn running_subscribe_example(emu: &Emulator) -> Subscriber {
    let mut sub = target_command(example("subscribe"));
    sub.args(["t"])
        .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
        .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token());
    let mut child = sub
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_from(child.stderr.take().expect("piped stderr"));
    // One deadline for all lines before it, so that other lines cannot stretch the wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if expect_within(&stderr, left, "\"subscribed to t\"") == "subscribed to t" {
            break;
        }
    }
    Subscriber { child, stderr }
}

/// The child's output, once it exits within `within` of now.
fn exit_within(child: std::process::Child, within: Duration) -> std::process::Output {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    expect_within(&rx, within, "example exit").unwrap()
}

/// The subscribe example's exit status and the rest of its stderr, once it exits within
/// `within` of now.
fn subscriber_exit_within(sub: Subscriber, within: Duration) -> (std::process::ExitStatus, String) {
    let Subscriber { mut child, stderr } = sub;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = expect_within(&rx, within, "subscribe example exit").unwrap();
    // Its stderr ends with it: the reader thread then hangs up.
    let mut rest = String::new();
    while let Ok(line) = stderr.recv_timeout(Duration::from_secs(2)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    (status, rest)
}

#[test]
fn subscribe_example_exits_non_zero_within_a_second_when_the_nucleus_dies() {
    let emu = Emulator::start().unwrap();
    let child = running_subscribe_example(&emu);
    emu.stop();
    let (status, stderr) = subscriber_exit_within(child, Duration::from_secs(1));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("subscribe failed: connection lost: connection closed"),
        "{stderr}"
    );
}

#[test]
fn subscribe_example_exits_zero_within_a_second_on_sigterm() {
    let emu = Emulator::start().unwrap();
    let child = running_subscribe_example(&emu);
    let kill = Command::new("kill")
        .args(["-TERM", &child.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, stderr) = subscriber_exit_within(child, Duration::from_secs(1));
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("stopped: signal\n"), "{stderr}");
}

#[test]
fn the_service_area_examples_run_against_the_embedded_emulator() {
    for name in [
        "lifecycle",
        "configuration",
        "iot_core",
        "secrets",
        "shadows",
    ] {
        let mut cmd = target_command(example(name));
        cmd.env_remove(ggipc::SOCKET_PATH_ENV)
            .env_remove(ggipc::AUTH_TOKEN_ENV);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "example {name} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("embedded emulator"), "{name}: {stdout}");
    }
}

#[test]
fn in_flight_example_publishes_sequentially_with_a_window_and_from_threads() {
    let emu = Emulator::start().unwrap();
    for args in [
        &["demo/in-flight", "200"][..],
        &["demo/in-flight", "500", "64"][..],
        &["demo/in-flight", "400", "1", "4"][..],
    ] {
        let mut run = target_command(example("in_flight"));
        run.args(args)
            .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
            .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token());
        let out = run_with_timeout(&mut run, Duration::from_secs(20));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = args[1];
        assert!(
            stdout.contains(&format!("{calls} publishes, window")),
            "{stdout}"
        );
    }
    let served = emu
        .records()
        .calls()
        .iter()
        .filter(|c| c.operation == "PublishToTopic" && c.outcome == "ok")
        .count();
    assert_eq!(served, 1100, "every publish reached the emulator");
    for args in [&["t", "10", "0"][..], &["t", "10", "1", "0"][..]] {
        let mut bad = target_command(example("in_flight"));
        bad.args(args);
        let out = run_with_timeout(&mut bad, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

const RELAY: &str = "com.example.Relay";

/// The emulator loaded with the component example's recipe and secrets, plus an observer.
fn relay_emulator() -> Emulator {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/emulator");
    Emulator::builder()
        .recipe_file(format!("{dir}/{RELAY}.yaml"))
        .secrets_file(format!("{dir}/secrets.json"))
        .permissive_component("test.Observer", "observer-token")
        .start()
        .unwrap()
}

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut std::process::Child) -> crossbeam_channel::Receiver<String> {
    lines_from(child.stdout.take().unwrap())
}

/// Lines read from `reader` (a child's stdout or stderr), as they come.
fn lines_from(reader: impl std::io::Read + Send + 'static) -> crossbeam_channel::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn component_example_relays_follows_its_configuration_and_stops_on_sigterm() {
    use ggipc::model::{
        LifecycleState, PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage,
    };
    use ggipc::StreamItem;
    let emu = relay_emulator();
    let observer = emu.connect_as("test.Observer").unwrap();
    let relayed = observer
        .pull(SubscribeToTopicRequest::new("relayed/sensors/+"))
        .unwrap();
    let mut child = target_command(example("component"))
        .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
        .env(ggipc::AUTH_TOKEN_ENV, emu.token_of(RELAY).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let errors = lines_from(child.stderr.take().unwrap());
    assert_eq!(
        expect_within(&lines, Duration::from_secs(10), "site"),
        "site: plant-1"
    );
    assert_eq!(
        expect_within(&lines, Duration::from_secs(10), "secret"),
        "secret: 7 bytes"
    );
    wait_until(Duration::from_secs(10), "RUNNING", || {
        emu.device().component_state(RELAY) == Some(LifecycleState::Running)
    });

    // A JSON and a binary message: both reach IoT Core's record and the local topic as
    // they were published.
    observer
        .publish_to_topic(PublishToTopicRequest::json(
            "sensors/t1",
            serde_json::json!({"celsius": 21.5}),
        ))
        .unwrap();
    observer
        .publish_to_topic(PublishToTopicRequest::binary(
            "sensors/raw",
            b"\x01\x02".to_vec(),
        ))
        .unwrap();
    let mut seen: Vec<SubscriptionResponseMessage> = Vec::new();
    while seen.len() < 2 {
        match relayed.recv_timeout(Duration::from_secs(10)).unwrap() {
            StreamItem::Event(message) => seen.push(message),
            other => panic!("{other:?}"),
        }
    }
    seen.sort_by(|a, b| a.topic().cmp(b.topic()));
    assert_eq!(seen[0].topic(), "relayed/sensors/raw");
    assert_eq!(seen[0].binary(), Some(&b"\x01\x02"[..]));
    assert_eq!(seen[1].topic(), "relayed/sensors/t1");
    assert_eq!(seen[1].json(), Some(&serde_json::json!({"celsius": 21.5})));
    wait_until(Duration::from_secs(10), "both messages in IoT Core", || {
        emu.cloud().published().len() == 2
    });
    let mut cloud: Vec<(String, Vec<u8>)> = emu
        .cloud()
        .published()
        .into_iter()
        .map(|m| (m.topic, m.payload))
        .collect();
    cloud.sort();
    assert_eq!(
        cloud,
        vec![
            ("dt/sensors/raw".to_owned(), b"\x01\x02".to_vec()),
            ("dt/sensors/t1".to_owned(), br#"{"celsius":21.5}"#.to_vec()),
        ]
    );

    // A relay that fails (IoT Core refuses) is not silent: the component installs no logger,
    // so ggipc prints the handler's error to stderr; the subscription goes on.
    emu.replies().set("PublishToIoTCore", |_| {
        ggipc::emulator::Reply::error(ggipc::model::IpcError::from_application_error(
            Some("aws.greengrass#ServiceError"),
            Some("application/json"),
            br#"{"message":"cloud unreachable"}"#,
        ))
    });
    observer
        .publish_to_topic(PublishToTopicRequest::binary("sensors/t2", b"x".to_vec()))
        .unwrap();
    let error = expect_within(&errors, Duration::from_secs(10), "handler error");
    assert!(
        error.starts_with("ggipc: subscription handler failed:")
            && error.contains("cloud unreachable"),
        "{error}"
    );
    emu.replies().clear("PublishToIoTCore");

    // A deployment changes the configuration: the component's typed follower prints it.
    let deployment = emu.device().simulate_deployment(
        ggipc::emulator::SimulatedDeployment::new()
            .merge_configuration(RELAY, serde_json::json!({"settings": {"site": "plant-2"}})),
    );
    assert!(deployment.wait(Duration::from_secs(10)).is_some());
    assert_eq!(
        expect_within(&lines, Duration::from_secs(10), "new site"),
        "site: plant-2"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = exit_within(child, Duration::from_secs(2));
    assert!(out.status.success(), "{:?}", out.status);
    assert!(errors.try_recv().is_err(), "no other error on stderr");
}

#[test]
fn the_readme_shows_the_component_example_verbatim() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let code = std::fs::read_to_string(format!("{root}/examples/component.rs")).unwrap();
    let block = format!("<!-- readme-test: component.rs -->\n```rust,no_run\n{code}```\n");
    assert!(
        readme.contains(&block),
        "README's component.rs block differs from examples/component.rs"
    );
}

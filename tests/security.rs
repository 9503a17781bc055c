//! The SVCUID never appears in logs or in `Debug` output. Its own binary: it installs a
//! process-wide logger that captures everything at trace level.

use std::sync::Mutex;
use std::time::Duration;

use ggipc::emulator::{Emulator, Fault};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::{Client, ReconnectPolicy};
use serde_json::json;

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(format!(
            "{} {}: {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

const FIRST: &str = "svcuid-FIRST-s3cr3t-0123456789";
const SECOND: &str = "svcuid-SECOND-s3cr3t-9876543210";
const WRONG: &str = "svcuid-WRONG-s3cr3t-5555";

#[test]
fn the_svcuid_is_never_logged_nor_debug_printed() {
    log::set_logger(&LOGS).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let mut emu = Emulator::builder()
        .permissive_component("com.example.Secret", FIRST)
        .start()
        .unwrap();
    let mut debug = Vec::new();

    // A refused token.
    let refused = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token(WRONG)
        .connect()
        .unwrap_err();
    debug.push(format!("{refused:?} {refused}"));

    // A normal session, then a restart with a new token and a reconnect.
    let token = std::sync::Arc::new(Mutex::new(FIRST.to_owned()));
    let source = token.clone();
    let builder = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token(FIRST)
        .auth_token_source(move || Some(source.lock().unwrap().clone()))
        .reconnect(ReconnectPolicy::new().initial_delay(Duration::from_millis(10)));
    debug.push(format!("{builder:?}"));
    let client = builder.connect().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("s"),
            move |e: SubscriptionResponseMessage| {
                let _ = tx.send(e);
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("s", json!(1)))
        .unwrap();
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    *token.lock().unwrap() = SECOND.to_owned();
    emu.restart(Some(SECOND)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while emu.subscription_count() != 1 {
        assert!(std::time::Instant::now() < deadline, "no re-subscription");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A hostile server for good measure (errors are logged).
    emu.inject(Fault::ProtocolError("bye".into()));
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("s", json!(2)))
        .unwrap_err();
    debug.push(format!("{err:?} {err}"));
    debug.push(format!("{client:?} {sub:?} {emu:?}"));
    drop(sub);
    client.close();
    drop(emu);

    let logs = LOGS.0.lock().unwrap().clone();
    assert!(logs.len() > 10, "the logger captured too little: {logs:?}");
    for text in logs.iter().chain(debug.iter()) {
        for secret in [FIRST, SECOND, WRONG, "s3cr3t"] {
            assert!(!text.contains(secret), "the token leaked: {text}");
        }
    }
}

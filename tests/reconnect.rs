//! Opt-in reconnect: resume subscriptions, fail fast or wait, new token, give up, close.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use crossbeam_channel::{unbounded, Receiver, Sender};
use ggipc::emulator::{Emulator, Fault};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::{CallOptions, Client, CloseReason, Error, ReconnectPolicy, StreamHandler, TimeoutKind};
use parking_lot::Mutex;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

fn fast_policy() -> ReconnectPolicy {
    ReconnectPolicy::new()
        .initial_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(100))
}

/// A client of `emu` that reconnects with [`fast_policy`].
fn reconnecting_client(emu: &Emulator) -> Client {
    Client::builder()
        .socket_path(emu.socket_path())
        .auth_token(emu.auth_token())
        .reconnect(fast_policy())
        .connect()
        .unwrap()
}

struct Recorder(Sender<String>);
impl StreamHandler<SubscriptionResponseMessage> for Recorder {
    fn on_stream_event(&mut self, e: SubscriptionResponseMessage) {
        let _ = self
            .0
            .send(format!("event {}", e.json().cloned().unwrap_or_default()));
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self.0.send(format!("error {}", error.is_connection_lost()));
        ggipc::StreamControl::Close
    }
    fn on_stream_interrupted(&mut self, reason: &Error) {
        let _ = self.0.send(format!(
            "interrupted {}",
            matches!(reason, Error::Disconnected(_))
        ));
    }
    fn on_stream_resumed(&mut self) {
        let _ = self.0.send("resumed".into());
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send("closed".into());
    }
}

fn publish(client: &Client, topic: &str, n: i32) -> ggipc::Result<()> {
    client
        .publish_to_topic(PublishToTopicRequest::json(topic, json!(n)))
        .map(|_| ())
}

fn next(rx: &Receiver<String>, what: &str) -> String {
    expect_within(rx, BOUND, what)
}

#[test]
fn after_a_restart_with_a_new_token_subscriptions_resume_and_calls_work() {
    let mut emu = Emulator::start().unwrap();
    let token = Arc::new(Mutex::new(emu.auth_token().to_owned()));
    let source = token.clone();
    let client = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token_source(move || Some(source.lock().clone()))
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    let mut subs = Vec::new();
    let mut rxs = Vec::new();
    for topic in ["a", "b"] {
        let (tx, rx) = unbounded();
        subs.push(
            client
                .subscribe_to_topic(SubscribeToTopicRequest::new(topic), Recorder(tx))
                .unwrap(),
        );
        rxs.push(rx);
    }
    publish(&client, "a", 1).unwrap();
    publish(&client, "b", 1).unwrap();
    assert_eq!(next(&rxs[0], "event a1"), "event 1");
    assert_eq!(next(&rxs[1], "event b1"), "event 1");

    emu.go_down();
    for rx in &rxs {
        assert_eq!(next(rx, "interrupted"), "interrupted true");
    }
    // While down: a call fails at once with Disconnected...
    let err = returns_within(Duration::from_secs(1), "a call while down", || {
        publish(&client, "a", 2)
    })
    .unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(!client.is_connected());
    // ...or waits for the reconnect if asked to.
    let waiting = {
        let c = client.clone();
        std::thread::spawn(move || {
            c.publish_to_topic_with(
                PublishToTopicRequest::json("a", json!(3)),
                CallOptions::timeout(BOUND).wait_for_reconnect(true),
            )
        })
    };
    // The nucleus comes back with a new SVCUID; the old one is refused.
    *token.lock() = "the-new-token".into();
    emu.come_back(Some("the-new-token")).unwrap();
    for rx in &rxs {
        assert_eq!(next(rx, "resumed"), "resumed");
    }
    waiting.join().unwrap().unwrap();
    assert_eq!(next(&rxs[0], "the waiting call's event"), "event 3");
    assert!(client.is_connected());
    wait_until(BOUND, "both re-subscribed at the server", || {
        emu.subscription_count() == 2
    });
    publish(&client, "b", 4).unwrap();
    assert_eq!(next(&rxs[1], "event after resume"), "event 4");
    // Closing one resumed subscription reaches the server.
    drop(subs.pop());
    assert_eq!(next(&rxs[1], "closed"), "closed");
    wait_until(BOUND, "server dropped the subscription", || {
        emu.subscription_count() == 1
    });
    drop(client);
    assert_eq!(next(&rxs[0], "closed at drop"), "closed");
}

#[test]
fn a_disabled_reconnect_leaves_the_client_closed() {
    let mut emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.restart(None).unwrap();
    wait_until(BOUND, "loss noticed", || !client.is_connected());
    let err = publish(&client, "a", 1).unwrap_err();
    assert!(
        matches!(err, Error::Closed(CloseReason::PeerClosed)),
        "{err:?}"
    );
}

#[test]
fn reconnect_gives_up_after_max_attempts_and_ends_subscriptions() {
    let mut emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .reconnect(fast_policy().max_attempts(3))
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("x"), Recorder(tx))
        .unwrap();
    emu.go_down();
    assert_eq!(next(&rx, "interrupted"), "interrupted true");
    assert_eq!(next(&rx, "error at give-up"), "error true");
    assert_eq!(next(&rx, "closed at give-up"), "closed");
    let err = publish(&client, "x", 1).unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err:?}");
    // Even a call that would wait fails at once now.
    let err = returns_within(
        Duration::from_secs(1),
        "a waiting call after give-up",
        || {
            client.publish_to_topic_with(
                PublishToTopicRequest::json("x", json!(1)),
                CallOptions::default().wait_for_reconnect(true),
            )
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err:?}");
}

#[test]
fn a_call_waiting_for_a_reconnect_that_never_comes_times_out() {
    let mut emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    emu.go_down();
    wait_until(BOUND, "loss noticed", || !client.is_connected());
    let err = returns_within(BOUND, "a waiting call", || {
        client.publish_to_topic_with(
            PublishToTopicRequest::json("x", json!(1)),
            CallOptions::timeout(Duration::from_millis(200)).wait_for_reconnect(true),
        )
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Connect)),
        "{err:?}"
    );
}

#[test]
fn close_while_reconnecting_returns_promptly_and_closes_subscriptions() {
    let mut emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("x"), Recorder(tx))
        .unwrap();
    emu.go_down();
    assert_eq!(next(&rx, "interrupted"), "interrupted true");
    let waiting = {
        let c = client.clone();
        std::thread::spawn(move || {
            c.publish_to_topic_with(
                PublishToTopicRequest::json("x", json!(1)),
                CallOptions::timeout(Duration::from_secs(30)).wait_for_reconnect(true),
            )
        })
    };
    returns_within(Duration::from_secs(2), "close while reconnecting", || {
        client.close()
    });
    assert_eq!(next(&rx, "closed"), "closed");
    let result = returns_within(Duration::from_secs(2), "the waiting call ending", || {
        waiting.join().unwrap()
    });
    assert!(
        matches!(result, Err(Error::Closed(CloseReason::ByUser))),
        "{result:?}"
    );
}

#[test]
fn close_during_a_reconnect_handshake_aborts_it() {
    let emu = Emulator::start().unwrap();
    // Neither bound would end the stalled handshake before `close` must return.
    let client = emu
        .client_builder()
        .reconnect(fast_policy())
        .connect_timeout(Duration::from_secs(30))
        .shutdown_timeout(Duration::from_secs(10))
        .connect()
        .unwrap();
    emu.faults().inject(Fault::IgnoreConnect);
    emu.disconnect_all();
    wait_until(BOUND, "the reconnect attempt's CONNECT ignored", || {
        emu.faults().hits() >= 1
    });
    // The attempt's socket is shut down: the handshake fails at once and the
    // supervisor ends, instead of close() waiting out its shutdown bound.
    returns_within(Duration::from_secs(2), "close during a handshake", || {
        client.close()
    });
}

#[test]
fn a_resubscription_the_server_refuses_ends_that_subscription() {
    let mut emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("x"), Recorder(tx))
        .unwrap();
    emu.go_down();
    assert_eq!(next(&rx, "interrupted"), "interrupted true");
    emu.replies().set("SubscribeToTopic", |_| {
        ggipc::emulator::Reply::error(ggipc::model::IpcError::from_application_error(
            Some("aws.greengrass#UnauthorizedError"),
            Some("application/json"),
            br#"{"message":"not any more"}"#,
        ))
    });
    emu.come_back(None).unwrap();
    assert_eq!(next(&rx, "error"), "error false");
    assert_eq!(next(&rx, "closed"), "closed");
    wait_until(BOUND, "reconnected", || client.is_connected());
    publish(&client, "y", 1).unwrap();
}

#[test]
fn a_panicking_token_source_does_not_end_reconnecting() {
    // Issue 9: the token source runs on the reconnect thread. A panic in it must be
    // caught (the previous token is used) rather than silently end reconnecting.
    let mut emu = Emulator::start().unwrap();
    let token = emu.auth_token().to_owned();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = calls.clone();
    let client = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token(token)
        .auth_token_source(move || {
            // Not asked at the first connect (an explicit token wins there): each call
            // is a reconnect attempt, and every one panics.
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("token source failed");
        })
        .reconnect(fast_policy())
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("p"), Recorder(tx))
        .unwrap();
    emu.go_down();
    assert_eq!(next(&rx, "interrupted"), "interrupted true");
    emu.come_back(None).unwrap();
    assert_eq!(next(&rx, "resumed"), "resumed");
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // `resumed` comes before the new connection is installed for calls.
    wait_until(BOUND, "reconnected", || client.is_connected());
    publish(&client, "p", 1).unwrap();
    assert_eq!(next(&rx, "event after resume"), "event 1");
}

/// Publishes from `on_stream_resumed` with the default options (no waiting for a
/// reconnect): the resumption is announced only once the client can call again.
struct CallsWhenResumed {
    client: Client,
    results: Sender<String>,
}
impl StreamHandler<SubscriptionResponseMessage> for CallsWhenResumed {
    fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {}
    fn on_stream_resumed(&mut self) {
        let outcome = match publish(&self.client, "elsewhere", 1) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("{e:?}"),
        };
        let _ = self.results.send(outcome);
    }
}

#[test]
fn a_handler_told_of_the_resumption_can_call_at_once() {
    let mut emu = Emulator::start().unwrap();
    let client = reconnecting_client(&emu);
    // Several subscriptions: the first is resumed while the others are still being
    // re-subscribed, which is when a too-early notice would show.
    let (tx, rx) = unbounded();
    let _subs: Vec<_> = (0..8)
        .map(|i| {
            let handler = CallsWhenResumed {
                client: client.clone(),
                results: tx.clone(),
            };
            client
                .subscribe_to_topic(SubscribeToTopicRequest::new(format!("t{i}")), handler)
                .unwrap()
        })
        .collect();
    for round in 0..3 {
        emu.go_down();
        emu.come_back(None).unwrap();
        for _ in 0..8 {
            assert_eq!(
                next(&rx, "a call from on_stream_resumed"),
                "ok",
                "round {round}"
            );
        }
    }
}

#[test]
fn a_configuration_follower_reads_the_value_again_when_its_subscription_resumes() {
    #[derive(serde::Deserialize)]
    struct Settings {
        site: String,
    }
    let mut emu = Emulator::start().unwrap();
    let client = reconnecting_client(&emu);
    let site = |name: &str| serde_json::json!({"settings": {"site": name}});
    let deploy = |emu: &Emulator, name: &str| {
        let deployment = ggipc::emulator::SimulatedDeployment::new()
            .merge_configuration(emu.component_name(), site(name));
        assert!(emu
            .device()
            .simulate_deployment(deployment)
            .wait(BOUND)
            .is_some());
    };
    deploy(&emu, "plant-1");
    let (tx, rx) = unbounded();
    let _follower = client
        .follow_configuration(["settings"], move |s: Settings| tx.send(s.site))
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), "plant-1");
    // The change is made while the nucleus is down: no update event can reach the
    // component, only the resumption tells the follower to read again.
    emu.go_down();
    deploy(&emu, "plant-2");
    emu.come_back(None).unwrap();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), "plant-2");
}

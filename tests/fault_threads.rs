//! Shutdown under faults, counting the process's threads: no client thread outlives the
//! client, except a handler still blocked at close (documented). One test in this binary
//! so that the thread count is ours.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, unbounded};
use ggipc::emulator::{Emulator, Fault};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::{CloseReason, Error, ReconnectPolicy};
use parking_lot::Mutex;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

#[test]
fn no_thread_outlives_the_client_under_faults_except_a_blocked_handler() {
    let mut emu = Emulator::start().unwrap();
    assert_eq!(ggipc_threads(), 0);

    // 1. A killed server: pending calls fail, subscriptions end, every thread goes.
    {
        let victim = Emulator::start().unwrap();
        let client = victim.connect().unwrap();
        let (tx, rx) = unbounded();
        let _sub = client
            .subscribe_to_topic(
                SubscribeToTopicRequest::new("k"),
                move |_e: SubscriptionResponseMessage| {},
            )
            .unwrap();
        victim.faults().inject(Fault::NoReply);
        for _ in 0..3 {
            let c = client.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(c.publish_to_topic(PublishToTopicRequest::json("k", json!(1))));
            });
        }
        wait_until(BOUND, "three pending calls", || victim.faults().hits() == 3);
        drop(victim);
        for _ in 0..3 {
            let r = expect_within(&rx, BOUND, "a pending call failing");
            assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
        }
        drop(client);
        wait_until(BOUND, "threads gone after a killed server", || {
            ggipc_threads() == 0
        });
    }

    // 2. Reconnect enabled, server down, client closed while reconnecting: the
    //    supervisor ends too.
    {
        let client = emu
            .client_builder()
            .reconnect(ReconnectPolicy::new().initial_delay(Duration::from_millis(10)))
            .connect()
            .unwrap();
        wait_until(BOUND, "I/O, 2 handlers and the supervisor", || {
            ggipc_threads() == 4
        });
        emu.go_down();
        wait_until(BOUND, "loss noticed", || !client.is_connected());
        returns_within(Duration::from_secs(2), "close while reconnecting", || {
            client.close()
        });
        drop(client);
        wait_until(BOUND, "threads gone after close while reconnecting", || {
            ggipc_threads() == 0
        });
        emu.come_back(None).unwrap();
    }

    // 3. Close with a call pending, a subscription open and its handler blocked: close
    //    returns within the bound; only the blocked handler's thread is left, and it ends
    //    once the handler returns.
    {
        let client = emu
            .client_builder()
            .shutdown_timeout(Duration::from_millis(300))
            .connect()
            .unwrap();
        let (gate_tx, gate_rx) = bounded::<()>(0);
        let (entered_tx, entered_rx) = unbounded();
        let _sub = client
            .subscribe_to_topic(
                SubscribeToTopicRequest::new("b"),
                move |_e: SubscriptionResponseMessage| {
                    let _ = entered_tx.send(());
                    let _ = gate_rx.recv_timeout(Duration::from_secs(30));
                },
            )
            .unwrap();
        client
            .publish_to_topic(PublishToTopicRequest::json("b", json!(1)))
            .unwrap();
        expect_within(&entered_rx, BOUND, "handler blocked");
        emu.faults().inject_for("GetConfiguration", Fault::NoReply);
        let pending = {
            let c = client.clone();
            std::thread::spawn(move || {
                c.call_json("GetConfiguration", &json!({}), Default::default())
            })
        };
        wait_until(BOUND, "the call is pending", || emu.faults().hits() >= 1);
        returns_within(Duration::from_secs(2), "close with everything busy", || {
            client.close()
        });
        let r = pending.join().unwrap();
        assert!(
            matches!(r, Err(Error::Closed(CloseReason::ByUser))),
            "{r:?}"
        );
        drop(client);
        wait_until(BOUND, "only the blocked handler left", || {
            ggipc_threads() == 1
        });
        drop(gate_tx);
        wait_until(BOUND, "the blocked handler's thread ends", || {
            ggipc_threads() == 0
        });
        emu.faults().clear();
    }

    // 4. The last handle dropped from inside a handler.
    {
        let client = emu.connect().unwrap();
        let slot = Arc::new(Mutex::new(Some(client.clone())));
        let (done_tx, done_rx) = unbounded();
        let inner = slot.clone();
        let sub = client
            .subscribe_to_topic(
                SubscribeToTopicRequest::new("d"),
                move |_e: SubscriptionResponseMessage| {
                    let start = std::time::Instant::now();
                    drop(inner.lock().take());
                    let _ = done_tx.send(start.elapsed());
                },
            )
            .unwrap();
        client
            .publish_to_topic(PublishToTopicRequest::json("d", json!(1)))
            .unwrap();
        drop(client);
        let took = expect_within(&done_rx, BOUND, "drop inside the handler");
        assert!(took < Duration::from_secs(2), "{took:?}");
        drop(sub);
        wait_until(BOUND, "threads gone after a drop inside a handler", || {
            ggipc_threads() == 0
        });
    }

    // 5. A staleness watchdog is one thread per subscription however often it is
    // re-timed, and it ends with the subscription.
    {
        let client = emu.connect().unwrap();
        let sub = client.pull(SubscribeToTopicRequest::new("w")).unwrap();
        let watchers = || {
            thread_names()
                .iter()
                .filter(|n| n.as_str() == "ggipc-watch")
                .count()
        };
        sub.watch_staleness(Duration::from_millis(100)).unwrap();
        // (A new thread takes its name from inside itself, a moment after it starts.)
        wait_until(BOUND, "the watchdog thread", || watchers() == 1);
        for period in [200, 300] {
            sub.watch_staleness(Duration::from_millis(period)).unwrap();
        }
        assert_eq!(watchers(), 1, "re-timing started another watchdog thread");
        drop(sub);
        wait_until(BOUND, "the watchdog thread ended", || watchers() == 0);
        drop(client);
        wait_until(BOUND, "threads gone after the watchdog", || {
            ggipc_threads() == 0
        });
    }
}

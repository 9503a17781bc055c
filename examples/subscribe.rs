//! What a component on a device runs to print the messages of a local topic.
//!
//! ```sh
//! cargo run --example subscribe -- <topic> [--count N]
//! ```
//! Prints `subscribed to <topic>` on stderr once the server accepted the subscription, then
//! one line per message on stdout (JSON compact, binary as UTF-8 text).
//!
//! With `--count N` it exits 0 after N messages. Without it, it runs until the nucleus
//! stops it: on SIGTERM or SIGINT it prints `stopped: signal` and exits 0; when the
//! connection is lost it prints the error and exits 1.

use std::io::Write;
use std::process::ExitCode;

use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::{Shutdown, StreamItem};

fn line(event: &SubscriptionResponseMessage) -> String {
    match (event.json(), event.binary()) {
        (Some(value), _) => value.to_string(),
        (None, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (topic, count) = match args.as_slice() {
        // Not a topic to wait on for ever.
        [help] if help == "--help" || help == "-h" => return usage(),
        [topic] => (topic.clone(), None),
        [topic, flag, n] if flag == "--count" => match n.parse::<u64>() {
            Ok(n) => (topic.clone(), Some(n)),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    // Catch SIGTERM from here on, so that one arriving before the wait below is not lost.
    if let Err(e) = Shutdown::catch_signals() {
        return fail(&e.to_string());
    }
    let client = match ggipc::Client::connect() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let subscription = match client.pull(SubscribeToTopicRequest::new(topic.clone())) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    eprintln!("subscribed to {topic}");

    if let Some(n) = count {
        // Pull exactly n messages on this thread.
        let mut seen = 0;
        for item in &subscription {
            match item {
                StreamItem::Event(event) => {
                    print(&line(&event));
                    seen += 1;
                    if seen == n {
                        return ExitCode::SUCCESS;
                    }
                }
                StreamItem::End(end) => return fail(&end.to_string()),
                other => eprintln!("{other:?}"),
            }
        }
        return fail("the subscription ended");
    }

    // Print on another thread; this one waits for the end of the component.
    std::thread::spawn(move || {
        for item in subscription {
            match item {
                StreamItem::Event(event) => print(&line(&event)),
                StreamItem::End(end) => eprintln!("subscription ended: {end}"),
                other => eprintln!("{other:?}"),
            }
        }
    });
    match client.wait_for_shutdown() {
        Shutdown::Signal(_) => {
            eprintln!("stopped: signal");
            ExitCode::SUCCESS
        }
        why => fail(&why.to_string()),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: subscribe <topic> [--count N]");
    ExitCode::from(2)
}

fn fail(why: &str) -> ExitCode {
    eprintln!("subscribe failed: {why}");
    ExitCode::FAILURE
}

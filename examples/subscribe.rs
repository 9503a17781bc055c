//! What a component on a device runs to print the messages of a local topic.
//!
//! ```sh
//! cargo run --example subscribe -- <topic> [--count N]
//! ```
//! Prints `subscribed to <topic>` on stderr once the server accepted the subscription, then
//! one line per message on stdout (JSON compact, binary as UTF-8 text), and exits 0 after
//! N messages. On an error or a lost connection it prints the error and exits non-zero.

use std::io::Write;
use std::process::ExitCode;

use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::{Error, StreamHandler};

enum Note {
    Line(String),
    Failed(String),
}

struct Printer(crossbeam_channel::Sender<Note>);

impl StreamHandler<SubscriptionResponseMessage> for Printer {
    fn on_stream_event(&mut self, event: SubscriptionResponseMessage) {
        let line = match (event.json(), event.binary()) {
            (Some(value), _) => value.to_string(),
            (None, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        let _ = self.0.send(Note::Line(line));
    }

    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self.0.send(Note::Failed(error.to_string()));
        ggipc::StreamControl::Close
    }

    fn on_stream_closed(&mut self) {
        let _ = self
            .0
            .send(Note::Failed("the subscription was closed".into()));
    }
}

fn main() -> ExitCode {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (topic, count) = match args.as_slice() {
        [topic] => (topic.clone(), None),
        [topic, flag, n] if flag == "--count" => match n.parse::<u64>() {
            Ok(n) => (topic.clone(), Some(n)),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let client = match ggipc::Client::connect() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let subscription =
        match client.subscribe_to_topic(SubscribeToTopicRequest::new(topic.clone()), Printer(tx)) {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
    eprintln!("subscribed to {topic}");
    let mut seen = 0;
    while count.map_or(true, |n| seen < n) {
        match rx.recv() {
            Ok(Note::Line(line)) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                seen += 1;
            }
            Ok(Note::Failed(why)) => return fail(&why),
            Err(_) => return fail("the subscription ended"),
        }
    }
    drop(subscription);
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: subscribe <topic> [--count N]");
    ExitCode::from(2)
}

fn fail(why: &str) -> ExitCode {
    eprintln!("subscribe failed: {why}");
    ExitCode::FAILURE
}

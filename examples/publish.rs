//! What a component on a device runs to publish one message on a local topic.
//!
//! ```sh
//! cargo run --example publish -- <topic> <message> [--count N]
//! ```
//! The message is sent as a JSON message if it parses as JSON, else as a binary message.
//! With `--count N` it publishes N JSON messages `{"seq": i, "message": <message>}`,
//! i = 0..N, one after the other on one connection (`tests/tools/v2_reordering.py` uses
//! this to count the events another client receives out of order).
//! Connects from the Greengrass environment (`AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`,
//! `SVCUID`); exits non-zero with the error otherwise.
//!
//! This is the program of the size table in BENCHMARKS.md ("Binary size"), so it logs with
//! the few-line [`StderrLogger`] below rather than `env_logger` (which costs ~33 KB on
//! armv7): a component for a small device can do the same; the nucleus captures stderr
//! into the component's log file.

use std::io::Write;
use std::process::ExitCode;

use ggipc::model::PublishToTopicRequest;
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Writes `[LEVEL target] message` lines to stderr for records at or above the level of
/// `RUST_LOG` (`off`, `error`, `warn`, `info`, `debug` or `trace`; `warn` when unset or not
/// one of those). Unlike `env_logger` it takes one level for every module, no
/// `module=level` directives.
struct StderrLogger;

impl StderrLogger {
    fn init() {
        let level = std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| v.trim().parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::Warn);
        if log::set_logger(&StderrLogger).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level: Level = record.level();
            // Under stderr's lock, so that lines of different threads do not mix; an
            // error writing (stderr closed) is ignored rather than a panic.
            let _ = writeln!(
                std::io::stderr().lock(),
                "[{level:<5} {}] {}",
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    StderrLogger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (topic, message, count) = match args.as_slice() {
        [topic, message] => (topic.clone(), message.clone(), None),
        [topic, message, flag, n] if flag == "--count" => match n.parse::<u64>() {
            Ok(n) => (topic.clone(), message.clone(), Some(n)),
            Err(_) => {
                eprintln!("--count: not a number: {n}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: publish <topic> <message> [--count N]");
            return ExitCode::from(2);
        }
    };
    let result = ggipc::Client::connect().and_then(|client| match count {
        None => {
            let request = match serde_json::from_slice::<serde_json::Value>(message.as_bytes()) {
                Ok(value) => PublishToTopicRequest::json(topic, value),
                Err(_) => PublishToTopicRequest::binary(topic, message.into_bytes()),
            };
            client.publish_to_topic(request).map(drop)
        }
        Some(n) => (0..n).try_for_each(|seq| {
            let value = serde_json::json!({"seq": seq, "message": message});
            client
                .publish_to_topic(PublishToTopicRequest::json(topic.clone(), value))
                .map(drop)
        }),
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publish failed: {e}");
            ExitCode::FAILURE
        }
    }
}

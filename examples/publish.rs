//! What a component on a device runs to publish one message on a local topic.
//!
//! ```sh
//! cargo run --example publish -- <topic> <message>
//! ```
//! The message is sent as a JSON message if it parses as JSON, else as a binary message.
//! Connects from the Greengrass environment (`AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`,
//! `SVCUID`); exits non-zero with the error otherwise.

use std::process::ExitCode;

use ggipc::model::PublishToTopicRequest;

fn main() -> ExitCode {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut args = std::env::args().skip(1);
    let (Some(topic), Some(message), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: publish <topic> <message>");
        return ExitCode::from(2);
    };
    let request = match serde_json::from_str::<serde_json::Value>(&message) {
        Ok(value) => PublishToTopicRequest::json(topic, value),
        Err(_) => PublishToTopicRequest::binary(topic, message.into_bytes()),
    };
    let result = ggipc::Client::connect().and_then(|client| client.publish_to_topic(request));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publish failed: {e}");
            ExitCode::FAILURE
        }
    }
}

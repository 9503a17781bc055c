//! Publishes one message on a local topic, connecting as a Greengrass component would
//! (socket path and token from the environment).
//!
//! ```text
//! publish <topic> <message>
//! ```
//! A message that parses as JSON is sent as a JSON message, anything else as bytes.

use ggipc::model::PublishToTopicRequest;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(topic), Some(message)) = (args.next(), args.next()) else {
        eprintln!("usage: publish <topic> <message>");
        std::process::exit(2);
    };
    let request = match serde_json::from_str::<serde_json::Value>(&message) {
        Ok(value) => PublishToTopicRequest::json(topic, value),
        Err(_) => PublishToTopicRequest::binary(topic, message.into_bytes()),
    };
    let result = ggipc::Client::connect().and_then(|client| client.publish_to_topic(request));
    if let Err(e) = result {
        eprintln!("publish failed: {e}");
        std::process::exit(1);
    }
}

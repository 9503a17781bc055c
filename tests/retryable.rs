//! `Error::is_retryable` is false for every error that trying again on the same client
//! cannot fix, so a "retry while retryable" loop ends (issue 14, item 7).

mod common;

use std::time::Duration;

use common::*;
use ggipc::emulator::Emulator;
use ggipc::model::{IpcError, PublishToTopicRequest, ServiceError, UnauthorizedError};
use ggipc::{Client, CloseReason, Error, TimeoutKind};

fn publish(client: &Client) -> Result<(), Error> {
    client
        .publish_to_topic(PublishToTopicRequest::json("t", serde_json::json!(1)))
        .map(|_| ())
}

#[test]
fn a_client_without_reconnect_whose_server_went_away_is_not_retryable() {
    let path = unique_socket_path("retry-peer");
    let emu = Emulator::builder().socket_path(&path).start().unwrap();
    let client = Client::builder()
        .socket_path(&path)
        .auth_token(emu.auth_token())
        .connect()
        .unwrap();
    emu.stop();
    wait_until(Duration::from_secs(2), "the client sees the close", || {
        !client.is_connected()
    });
    let err = publish(&client).unwrap_err();
    assert!(
        matches!(err, Error::Closed(CloseReason::PeerClosed)),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "{err:?} is retryable");
    // The loop the issue describes ends: at most one more attempt, then not retryable.
    let mut attempts = 0;
    let last = loop {
        attempts += 1;
        match publish(&client) {
            Err(e) if e.is_retryable() && attempts < 100 => continue,
            other => break other,
        }
    };
    assert!(last.is_err());
    assert_eq!(attempts, 1);
}

#[test]
fn a_client_closed_by_the_user_is_not_retryable() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client.close();
    let err = publish(&client).unwrap_err();
    assert!(matches!(err, Error::Closed(CloseReason::ByUser)), "{err:?}");
    assert!(!err.is_retryable());
}

#[test]
fn an_unauthorized_call_is_not_retryable() {
    let recipe = r#"
ComponentName: com.example.Denied
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.pubsub:
        p:
          operations: [aws.greengrass#PublishToTopic]
          resources: [allowed]
"#;
    let emu = Emulator::builder()
        .recipe_str(recipe, ggipc::emulator::RecipeFormat::Yaml)
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    let err = publish(&client).unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(IpcError::Unauthorized(_))),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[test]
fn errors_that_retrying_cannot_fix_are_not_retryable() {
    let not = [
        Error::Closed(CloseReason::PeerClosed),
        Error::Closed(CloseReason::ByUser),
        Error::Closed(CloseReason::WriteTimeout),
        Error::InvalidArgument("handler_threads must be at least 1".into()),
        Error::Codec(ggipc::CodecError::FrameTooLarge {
            total_length: 20 << 20,
            max: 16 << 20,
        }),
        Error::ConnectRejected {
            detail: "unknown token".into(),
        },
        Error::MissingEnvVar { name: "SVCUID" },
        Error::from(IpcError::from(UnauthorizedError::default())),
        Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
    ];
    for e in &not {
        assert!(!e.is_retryable(), "{e:?} is retryable");
    }
    let retryable = [
        Error::Timeout(TimeoutKind::Response),
        Error::Disconnected(CloseReason::PeerClosed),
        Error::from(IpcError::from(ServiceError::default())),
        // Connecting before the nucleus listens.
        Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        Error::from(std::io::Error::from(std::io::ErrorKind::NotFound)),
    ];
    for e in &retryable {
        assert!(e.is_retryable(), "{e:?} is not retryable");
    }
}

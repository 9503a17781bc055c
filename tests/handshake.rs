//! The CONNECT handshake: accepted, rejected, closed without an ack, silent.

mod common;

use std::time::Duration;

use common::*;
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::emulator::{Emulator, Flavor};
use ggipc::rpc::MessageType;
use ggipc::{Client, Error, TimeoutKind};

#[test]
fn accepted_handshake_gives_a_connected_client() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    assert!(client.is_connected());
    assert_eq!(emu.connection_count(), 1);
}

#[test]
fn connect_sends_version_and_escaped_token() {
    let peer = ScriptedPeer::start("connect-bytes", |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        let connect = accept_handshake(&mut socket, &mut decoder);
        assert_eq!(connect.version.as_deref(), Some("0.1.0"));
        assert_eq!(connect.stream_id, 0);
        assert_eq!(connect.flags, 0);
        let body: serde_json::Value = serde_json::from_slice(&connect.payload).unwrap();
        assert_eq!(body, serde_json::json!({"authToken": "to\"ken"}));
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("to\"ken")
        .connect()
        .unwrap();
    peer.join();
    drop(client);
}

#[test]
fn rejected_token_is_connect_rejected() {
    let emu = Emulator::start().unwrap();
    let err = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token("wrong")
        .connect()
        .unwrap_err();
    match err {
        Error::ConnectRejected { detail } => assert!(detail.contains("accepted flag"), "{detail}"),
        other => panic!("expected ConnectRejected, got {other:?}"),
    }
}

#[test]
fn lite_closing_without_ack_is_connect_rejected() {
    let emu = Emulator::builder().flavor(Flavor::Lite).start().unwrap();
    let err = Client::builder()
        .socket_path(emu.socket_path())
        .auth_token("wrong")
        .connect()
        .unwrap_err();
    match err {
        Error::ConnectRejected { detail } => {
            assert!(detail.contains("without a CONNECT_ACK"), "{detail}")
        }
        other => panic!("expected ConnectRejected, got {other:?}"),
    }
}

#[test]
fn silent_server_is_a_handshake_timeout() {
    let peer = ScriptedPeer::start("silent", |socket| {
        // Accept, answer nothing, keep the socket open until the client gives up.
        read_to_end(socket);
    });
    let err = returns_within(Duration::from_secs(3), "connect to a silent server", || {
        Client::builder()
            .socket_path(&peer.path)
            .auth_token("t")
            .connect_timeout(Duration::from_millis(300))
            .connect()
            .unwrap_err()
    });
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Handshake)),
        "{err:?}"
    );
    peer.join();
}

#[test]
fn a_first_message_other_than_connect_ack_is_a_protocol_error() {
    let peer = ScriptedPeer::start("ping-first", |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        read_message(&mut socket, &mut decoder).expect("CONNECT");
        write_message(
            &mut socket,
            &ggipc::rpc::RpcMessage::new(MessageType::Ping, 0, 0),
        );
        read_to_end(socket);
    });
    let err = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    peer.join();
}

#[test]
fn missing_socket_is_an_io_error_naming_the_path() {
    let path = unique_socket_path("absent");
    let err = Client::builder()
        .socket_path(&path)
        .auth_token("t")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn relative_socket_path_works() {
    // Relative to the working directory, whatever it is and wherever the target dir is
    // (CARGO_TARGET_DIR may point elsewhere): `../..` up to the root, then the temp dir.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count().saturating_sub(1));
    let temp = std::env::temp_dir();
    let relative = format!(
        "{up}{}/ggipc-rel-{}.sock",
        temp.strip_prefix("/").unwrap().display(),
        std::process::id()
    );
    assert!(std::path::Path::new(&relative).is_relative());
    let emu = Emulator::builder().socket_path(&relative).start().unwrap();
    let client = Client::builder()
        .socket_path(&relative)
        .auth_token(emu.auth_token())
        .connect()
        .unwrap();
    assert!(client.is_connected());
}

#[test]
fn environment_variables_are_read_and_named_when_missing() {
    // The only test in this binary that touches these variables.
    std::env::remove_var(ggipc::SOCKET_PATH_ENV);
    std::env::remove_var(ggipc::AUTH_TOKEN_ENV);
    match Client::connect().unwrap_err() {
        Error::MissingEnvVar { name } => {
            assert_eq!(name, "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
        }
        other => panic!("{other:?}"),
    }
    let emu = Emulator::start().unwrap();
    std::env::set_var(ggipc::SOCKET_PATH_ENV, emu.socket_path());
    match Client::connect().unwrap_err() {
        Error::MissingEnvVar { name } => assert_eq!(name, "SVCUID"),
        other => panic!("{other:?}"),
    }
    std::env::set_var(ggipc::AUTH_TOKEN_ENV, emu.auth_token());
    let client = Client::connect().unwrap();
    assert!(client.is_connected());
    std::env::remove_var(ggipc::SOCKET_PATH_ENV);
    std::env::remove_var(ggipc::AUTH_TOKEN_ENV);
}

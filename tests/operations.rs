//! Every operation of the service end to end: each typed method sends the request the
//! official SDK would (golden JSON), and decodes the scripted response (and, for streams,
//! events) back to exactly the golden JSON. Every modeled error arrives typed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use crossbeam_channel::{unbounded, Sender};
use ggipc::emulator::{Emulator, Reply};
use ggipc::model::{self, IpcError, Operation, StreamingOperation, OPERATIONS};
use ggipc::{Client, Error};
use serde_json::Value;

fn golden(shape_id: &str) -> Vec<Value> {
    let name = shape_id.trim_start_matches("aws.greengrass#");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: Value = serde_json::from_str(&text).unwrap();
    file["samples"].as_array().unwrap().clone()
}

type Call = Box<dyn Fn(&Client, Value) -> Result<Value, Error>>;
type Subscribe =
    Box<dyn Fn(&Client, Value, Sender<Value>) -> Result<Box<dyn std::any::Any>, Error>>;

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

macro_rules! request_response {
    ($($method:ident => $op:ident),* $(,)?) => {
        vec![$((
            <model::$op as Operation>::NAME,
            Box::new(|client: &Client, request: Value| -> Result<Value, Error> {
                let request: <model::$op as Operation>::Request = serde_json::from_value(request).unwrap();
                client.$method(request).map(|r| to_json(&r))
            }) as Call,
        )),*]
    };
}

macro_rules! streaming {
    ($($method:ident => $op:ident),* $(,)?) => {
        vec![$((
            <model::$op as Operation>::NAME,
            Box::new(|client: &Client, request: Value, events: Sender<Value>| -> Result<Box<dyn std::any::Any>, Error> {
                let request: <model::$op as Operation>::Request = serde_json::from_value(request).unwrap();
                let sub = client.$method(request, move |e: <model::$op as StreamingOperation>::Event| {
                    events.send(to_json(&e)).unwrap();
                })?;
                assert_eq!(
                    to_json(sub.response::<<model::$op as Operation>::Response>().expect("the operation's response type")),
                    golden(<model::$op as Operation>::Response::MODEL_TYPE)[0],
                    "{} initial response", stringify!($op)
                );
                Ok(Box::new(sub))
            }) as Subscribe,
        )),*]
    };
}

use ggipc::model::Shape;

// request_response_calls() and streaming_calls(), one entry per operation of the model.
include!("generated/operations.rs");

#[test]
fn the_tables_cover_every_operation_of_the_model() {
    let covered: BTreeSet<&str> = request_response_calls()
        .iter()
        .map(|(n, _)| *n)
        .chain(streaming_calls().iter().map(|(n, _)| *n))
        .collect();
    let all: BTreeSet<&str> = OPERATIONS.iter().map(|o| o.name).collect();
    assert_eq!(all.len(), 35);
    assert_eq!(covered, all);
    for (name, _) in streaming_calls() {
        assert!(model::operation_info(name).unwrap().streaming, "{name}");
    }
}

#[test]
fn every_request_response_operation_round_trips_end_to_end() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let mut checked = 0;
    for (name, call) in request_response_calls() {
        let info = model::operation_info(name).unwrap();
        let response = golden(info.response)[0].clone();
        let (seen_tx, seen_rx) = unbounded();
        let (model_type, body) = (info.response.to_owned(), response.clone());
        emu.replies().set(name, move |req| {
            seen_tx.send(req.body.clone()).unwrap();
            Reply::Response {
                model_type: model_type.clone(),
                body: body.clone(),
            }
        });
        for request in golden(info.request) {
            let got = call(&client, request.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, response, "{name}: decoded response");
            let sent = expect_within(&seen_rx, Duration::from_secs(5), name);
            assert_eq!(
                sent, request,
                "{name}: the request on the wire is the official SDK's JSON"
            );
            checked += 1;
        }
    }
    assert!(checked >= 28, "{checked}");
}

#[test]
fn every_streaming_operation_delivers_typed_events() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    for (name, subscribe) in streaming_calls() {
        let info = model::operation_info(name).unwrap();
        let (model_type, body) = (info.response.to_owned(), golden(info.response)[0].clone());
        emu.replies().set(name, move |_| Reply::Stream {
            model_type: model_type.clone(),
            body: body.clone(),
        });
        let (tx, rx) = unbounded();
        let request = golden(info.request)[0].clone();
        let sub = subscribe(&client, request, tx).unwrap_or_else(|e| panic!("{name}: {e}"));
        let event_type = info.event.unwrap();
        let events = golden(event_type);
        for event in &events {
            assert_eq!(
                emu.replies().push_event(name, event_type, event),
                1,
                "{name}"
            );
        }
        for event in &events {
            assert_eq!(
                &expect_within(&rx, Duration::from_secs(5), name),
                event,
                "{name}: event"
            );
        }
        drop(sub);
    }
}

#[test]
fn every_modeled_error_arrives_typed_with_its_fields() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let errors = [
        "ComponentNotFoundError",
        "ConflictError",
        "FailedUpdateConditionCheckError",
        "InvalidArgumentsError",
        "InvalidArtifactsDirectoryPathError",
        "InvalidClientDeviceAuthTokenError",
        "InvalidCredentialError",
        "InvalidRecipeDirectoryPathError",
        "InvalidTokenError",
        "ResourceNotFoundError",
        "ServiceError",
        "UnauthorizedError",
    ];
    for error in errors {
        let model_type = format!("aws.greengrass#{error}");
        let sample = golden(&model_type)[0].clone();
        let sent = IpcError::from_application_error(
            Some(&model_type),
            Some("application/json"),
            sample.to_string().as_bytes(),
        );
        let reply = sent.clone();
        emu.replies()
            .set("GetConfiguration", move |_| Reply::Error(reply.clone()));
        let err = client
            .get_configuration(model::GetConfigurationRequest::new(vec!["k".to_owned()]))
            .expect_err(error);
        let got = err
            .as_service_error()
            .unwrap_or_else(|| panic!("{error}: {err:?}"));
        assert_eq!(got, &sent, "{error}");
        assert_eq!(got.model_type(), Some(model_type.as_str()));
        assert_eq!(
            got.is_retryable(),
            matches!(error, "ServiceError" | "InvalidTokenError"),
            "{error}"
        );
        match got {
            IpcError::ResourceNotFound(e) => {
                assert_eq!(e.resource_type.as_deref(), sample["resourceType"].as_str());
                assert_eq!(e.resource_name.as_deref(), sample["resourceName"].as_str());
            }
            IpcError::Service(e) => assert_eq!(e.context.as_ref(), sample.get("context")),
            IpcError::Unmodeled(_) => panic!("{error} arrived unmodeled"),
            _ => {}
        }
    }
}

//! Unit tests of the model's encoding rules and error mapping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ggipc::model::*;
use serde_json::{json, Value};

fn enc<T: Shape>(value: &T) -> Value {
    serde_json::to_value(value).expect("encodes")
}

fn dec<T: Shape>(value: Value) -> T {
    serde_json::from_value(value).expect("decodes")
}

// --- timestamps -------------------------------------------------------------------------

#[test]
fn timestamp_accepts_integer_fraction_and_exponent_forms() {
    for (text, secs) in [
        ("1704067200", 1_704_067_200.0),
        ("1704067200.5", 1_704_067_200.5),
        ("1.7E9", 1.7e9),
        ("1.7000000005E9", 1_700_000_000.5),
        ("-1", -1.0),
    ] {
        let body = format!(r#"{{"results": [], "timestamp": {text}}}"#);
        let r: ListNamedShadowsForThingResponse = serde_json::from_str(&body).expect(text);
        assert_eq!(r.timestamp.as_secs_f64(), secs, "{text}");
    }
}

#[test]
fn timestamp_always_serialized_with_a_fraction() {
    let req =
        UpdateConfigurationRequest::new(Timestamp::from_secs_f64(1_704_067_200.0), json!({"a": 1}))
            .with_key_path(["x"]);
    let text = serde_json::to_string(&req).expect("encodes");
    assert!(text.contains(r#""timestamp":1704067200.0"#), "{text}");
    let text = serde_json::to_string(&Timestamp::from_secs_f64(1_704_067_200.25)).expect("encodes");
    assert_eq!(text, "1704067200.25");
    // The digest's worked example, byte for byte modulo spacing.
    let expected =
        json!({"keyPath": ["x"], "timestamp": 1704067200.0, "valueToMerge": {"k": null, "n": 1}});
    let req = UpdateConfigurationRequest::new(
        Timestamp::from_secs_f64(1_704_067_200.0),
        json!({"k": null, "n": 1}),
    )
    .with_key_path(["x"]);
    assert_eq!(enc(&req), expected);
}

#[test]
fn timestamp_system_time_conversions() {
    let t = UNIX_EPOCH + Duration::from_millis(1_704_067_200_500);
    let ts = Timestamp::from(t);
    assert_eq!(ts.as_secs_f64(), 1_704_067_200.5);
    assert_eq!(ts.as_millis(), 1_704_067_200_500);
    assert_eq!(ts.to_system_time(), t);
    assert_eq!(Timestamp::from_millis(1500).as_secs_f64(), 1.5);
    assert_eq!(Timestamp::from_secs_f64(f64::NAN), Timestamp::EPOCH);
    assert_eq!(Timestamp::from_secs_f64(f64::INFINITY).as_secs_f64(), 0.0);
    let before = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(Timestamp::from(before).as_secs_f64(), -10.0);
    assert!(Timestamp::now() > Timestamp::from(SystemTime::UNIX_EPOCH));
}

// --- enums ------------------------------------------------------------------------------

#[test]
fn enums_use_wire_values_and_keep_unknown_ones() {
    let req = PublishToIoTCoreRequest::new("t", Qos::AtLeastOnce)
        .with_payload(vec![0u8, 1])
        .with_user_properties([UserProperty::new().with_key("a").with_value("b")]);
    assert_eq!(
        enc(&req),
        json!({"topicName": "t", "qos": "1", "payload": "AAE=", "userProperties": [{"key": "a", "value": "b"}]})
    );
    let r: PublishToIoTCoreRequest =
        dec(json!({"topicName": "t", "qos": "2", "payloadFormat": "7"}));
    assert_eq!(r.qos, Qos::Unknown("2".into()));
    assert!(!r.qos.is_known());
    assert_eq!(r.payload_format, Some(PayloadFormat::Unknown("7".into())));
    assert_eq!(
        enc(&r),
        json!({"topicName": "t", "qos": "2", "payloadFormat": "7"})
    );

    let d: ComponentDetails =
        dec(json!({"componentName": "c", "version": "1.0.0", "state": "HIBERNATING"}));
    assert_eq!(d.state, LifecycleState::Unknown("HIBERNATING".into()));
    assert_eq!(d.state.to_string(), "HIBERNATING");
    assert_eq!(
        LifecycleState::from_wire("RUNNING"),
        LifecycleState::Running
    );
    assert_eq!(PayloadFormat::Utf8.as_str(), "1");
    assert_eq!(Qos::KNOWN, &[Qos::AtMostOnce, Qos::AtLeastOnce]);
    assert!(
        serde_json::from_value::<PublishToIoTCoreRequest>(json!({"topicName": "t", "qos": 1}))
            .is_err()
    );
}

// --- optional, null, unknown fields ------------------------------------------------------

#[test]
fn absent_optionals_are_omitted_and_null_means_absent() {
    let req = SubscribeToTopicRequest::new("a/b");
    assert_eq!(enc(&req), json!({"topic": "a/b"}));
    let req: SubscribeToTopicRequest = dec(json!({"topic": "a/b", "receiveMode": null}));
    assert_eq!(req.receive_mode, None);
    let req = req.with_receive_mode(ReceiveMode::ReceiveMessagesFromOthers);
    assert_eq!(
        enc(&req),
        json!({"topic": "a/b", "receiveMode": "RECEIVE_MESSAGES_FROM_OTHERS"})
    );

    let m: MqttMessage =
        dec(json!({"topicName": "t", "payload": null, "retain": null, "userProperties": null}));
    assert_eq!(m, MqttMessage::new("t"));
    assert_eq!(enc(&m), json!({"topicName": "t"}));
}

#[test]
fn nulls_inside_documents_are_preserved() {
    let doc = json!({"a": null, "b": [1, null, {"c": null}]});
    let req = PublishToTopicRequest::json("t", doc.clone());
    assert_eq!(
        enc(&req),
        json!({"topic": "t", "publishMessage": {"jsonMessage": {"message": doc}}})
    );
    let back: PublishToTopicRequest = dec(enc(&req));
    assert_eq!(back.publish_message.as_json(), Some(&doc));
}

#[test]
fn unknown_fields_are_ignored() {
    let r: SubscribeToTopicResponse = dec(json!({"topicName": "t", "future": {"x": 1}}));
    assert_eq!(r.topic_name.as_deref(), Some("t"));
    // The example frame's event body, with an unknown member next to the union member.
    let body = br#"{"binaryMessage":{"message":"aGk=","context":{"topic":"t"}},"unknownField":1}"#;
    let e: SubscriptionResponseMessage = serde_json::from_slice(body).expect("decodes");
    assert_eq!(e.topic(), "t");
    assert_eq!(e.binary(), Some(&b"hi"[..]));
    assert_eq!(e.json(), None);
}

#[test]
fn unions_have_one_key_and_decode_tolerantly() {
    assert_eq!(
        enc(&PublishToTopicRequest::binary("a/b", b"hi".to_vec())),
        json!({"topic": "a/b", "publishMessage": {"binaryMessage": {"message": "aGk="}}})
    );
    // null members are skipped, the first known non-null member wins
    let m: PublishMessage = dec(json!({"jsonMessage": null, "binaryMessage": {"message": "AA=="}}));
    assert_eq!(m.as_binary(), Some(&[0u8][..]));
    assert!(serde_json::from_value::<PublishMessage>(json!({})).is_err());
    assert!(serde_json::from_value::<PublishMessage>(json!({"other": 1})).is_err());
    assert!(serde_json::from_value::<PublishMessage>(json!("jsonMessage")).is_err());
    let s: SecretValue = dec(json!({"secretBinary": "AP8="}));
    assert_eq!(s.as_bytes(), &[0u8, 255]);
    assert_eq!(enc(&s), json!({"secretBinary": "AP8="}));
    let e = SubscriptionResponseMessage::new_json("a/b", json!({"x": 1}));
    assert_eq!(
        enc(&e),
        json!({"jsonMessage": {"message": {"x": 1}, "context": {"topic": "a/b"}}})
    );
}

#[test]
fn blobs_are_base64_and_bad_input_is_an_error_not_a_panic() {
    let r: GetThingShadowResponse = dec(json!({"payload": "eyJhIjoxfQ=="}));
    assert_eq!(r.document().expect("json"), json!({"a": 1}));
    // unpadded and line-broken input is accepted
    let r: GetThingShadowResponse = dec(json!({"payload": "eyJhIjoxfQ\n"}));
    assert_eq!(r.payload, br#"{"a":1}"#);
    for bad in [
        json!({"payload": "!!!"}),
        json!({"payload": 5}),
        json!({"payload": "a"}),
    ] {
        assert!(
            serde_json::from_value::<GetThingShadowResponse>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert!(serde_json::from_value::<UpdateThingShadowRequest>(
        json!({"thingName": "x", "payload": null})
    )
    .is_err());
}

/// Blobs as they come off the wire (`serde_json::from_slice`): escapes are honoured, a
/// raw control character is invalid JSON (as for the nucleus's parser) though a line
/// break escaped in the string is a MIME-style one, invalid UTF-8 is an error, not a
/// panic. (Reading a blob with `deserialize_bytes` would skip serde_json's UTF-8 check,
/// and its check for raw control characters with it: this test fails then.)
#[test]
fn blobs_from_the_wire_honour_escapes_and_refuse_invalid_json() {
    let decode = |json: &[u8]| serde_json::from_slice::<GetThingShadowResponse>(json);
    let a_is_1 = br#"{"a":1}"#;
    for good in [
        &br#"{"payload": "eyJhIjoxfQ=="}"#[..],
        br#"{"payload": "\u0065yJhIjoxfQ=="}"#,
        br#"{"payload": "eyJhIjox\nfQ=="}"#,
        br#"{"payload": "eyJhIjox\r\nfQ=="}"#,
    ] {
        let text = String::from_utf8_lossy(good);
        assert_eq!(decode(good).expect(&text).payload, a_is_1, "{text}");
    }
    // A raw line break (not the escape `\n`) is invalid JSON.
    let raw_line_break = decode(b"{\"payload\": \"eyJhIjox\nfQ==\"}").unwrap_err();
    assert!(
        raw_line_break.to_string().contains("control character"),
        "{raw_line_break}"
    );
    for bad in [
        &b"{\"payload\": \"eyJh\xffIjoxfQ==\"}"[..],
        b"{\"payload\": \"eyJh\x00IjoxfQ==\"}",
        br#"{"payload": [1, 2, 3]}"#,
        br#"{"payload": "\ud800"}"#,
        br#"{"payload": "eyJh\/Ijox"}"#,
        br#"{"payload": "!!!"}"#,
    ] {
        assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

/// RFC 4648 base64 with padding, written out here so the test does not check the
/// library's encoder against itself.
fn reference_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])),
                false => out.push('='),
            }
        }
    }
    out
}

#[test]
fn blobs_of_every_length_serialize_to_padded_base64_text() {
    // Blobs of up to 768 bytes are encoded on the stack, longer ones written in pieces:
    // lengths on both sides of that bound and up to several pieces long.
    let bytes: Vec<u8> = (0..2400u32).map(|i| (i * 131 % 251) as u8).collect();
    for len in (0..=70).chain([767, 768, 769, 770, 1023, 1024, 1025, 1536, 2303, 2304, 2400]) {
        let blob = &bytes[..len];
        let expected = reference_base64(blob);
        let publish = PublishToTopicRequest::binary("t", blob);
        assert_eq!(
            serde_json::to_string(&publish).expect("encode"),
            format!(
                r#"{{"topic":"t","publishMessage":{{"binaryMessage":{{"message":"{expected}"}}}}}}"#
            ),
            "optional blob of {len} bytes"
        );
        let update = UpdateThingShadowRequest::new("x", blob);
        let text = serde_json::to_string(&update).expect("encode");
        assert_eq!(
            text,
            format!(r#"{{"thingName":"x","payload":"{expected}"}}"#),
            "required blob of {len} bytes"
        );
        let back: UpdateThingShadowRequest = serde_json::from_str(&text).expect("decode");
        assert_eq!(back.payload, blob, "{len} bytes back");
    }
}

#[test]
fn responses_tolerate_missing_required_members() {
    let r: GetSecretValueResponse = dec(json!({"secretValue": {"secretString": "s"}}));
    assert_eq!(r.secret_id, "");
    assert!(r.version_stage.is_empty());
    let r: ListNamedShadowsForThingResponse = dec(json!({"results": null}));
    assert_eq!(r.timestamp, Timestamp::EPOCH);
    let r: ValidateAuthorizationTokenResponse = dec(json!({}));
    assert!(!r.is_valid);
    let r: GetThingShadowResponse = dec(json!({"payload": null}));
    assert!(r.payload.is_empty());
    // Requests stay strict; enums/unions without a natural default stay required.
    assert!(serde_json::from_value::<PublishToTopicRequest>(json!({"topic": "t"})).is_err());
    assert!(serde_json::from_value::<GetSecretValueResponse>(json!({})).is_err());
}

#[test]
fn sensitive_shapes_redact_debug() {
    let s = SecretValue::SecretString("hunter2".into());
    assert!(!format!("{s:?}").contains("hunter2"));
    let c = CertificateUpdate::new()
        .with_private_key("PRIVATE")
        .with_certificate("CERT");
    let text = format!("{c:?}");
    assert!(!text.contains("PRIVATE") && text.contains("CERT"), "{text}");
    let t = GetClientDeviceAuthTokenResponse::new("tok-secret");
    assert!(!format!("{t:?}").contains("tok-secret"));
    let m = MqttCredential::new()
        .with_client_id("id")
        .with_password("pw-secret");
    assert!(!format!("{m:?}").contains("pw-secret"));
    let p = CreateDebugPasswordResponse::new("pw-secret", "user", Timestamp::EPOCH);
    assert!(!format!("{p:?}").contains("pw-secret"));
}

// --- errors -------------------------------------------------------------------------------

#[test]
fn application_error_unauthorized_nucleus_style() {
    let payload =
        br#"{"message":"denied","_service":"aws.greengrass#GreengrassCoreIPC","_message":"denied","_errorCode":"UnauthorizedError"}"#;
    let e = IpcError::from_application_error(
        Some("aws.greengrass#UnauthorizedError"),
        Some("application/json"),
        payload,
    );
    assert_eq!(e, IpcError::Unauthorized(UnauthorizedError::new("denied")));
    assert_eq!(e.model_type(), Some("aws.greengrass#UnauthorizedError"));
    assert_eq!(e.message(), "denied");
    assert!(!e.is_retryable());
    assert_eq!(e.to_string(), "UnauthorizedError: denied");
}

#[test]
fn application_error_text_plain() {
    let e = IpcError::from_application_error(None, Some("text/plain"), b"InternalServerError");
    let IpcError::Unmodeled(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.model_type, None);
    assert_eq!(u.content_type.as_deref(), Some("text/plain"));
    assert_eq!(u.payload, "InternalServerError");
    assert_eq!(e.message(), "InternalServerError");
    assert!(!e.is_retryable());
}

#[test]
fn application_error_without_model_type() {
    let payload =
        br#"{ "error": "Unsupported Operation", "message": "x is an unsupported operation." }"#;
    let e = IpcError::from_application_error(None, Some("application/json"), payload);
    let IpcError::Unmodeled(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.message, "x is an unsupported operation.");
    assert_eq!(u.payload, String::from_utf8_lossy(payload));
    assert_eq!(e.model_type(), None);
    let e = IpcError::from_application_error(None, None, br#"{"error": "Unsupported Operation"}"#);
    assert_eq!(e.message(), "Unsupported Operation");
}

#[test]
fn application_error_lite_style_and_oddities() {
    let e = IpcError::from_application_error(
        Some("aws.greengrass#ServiceError"),
        Some("application/json"),
        br#"{"_message":"boom","_errorCode":"ServiceError"}"#,
    );
    assert_eq!(e, IpcError::Service(ServiceError::new("boom")));
    assert!(e.is_retryable());
    let e = IpcError::from_application_error(
        Some("aws.greengrass#ResourceNotFoundError"),
        None,
        br#"{"message":"m","resourceType":"component","resourceName":"c","_message":"other"}"#,
    );
    assert_eq!(
        e,
        IpcError::ResourceNotFound(
            ResourceNotFoundError::new("m")
                .with_resource_type("component")
                .with_resource_name("c")
        )
    );
    // framework and unknown ids, broken bodies, binary junk: unmodeled, never a panic
    let e =
        IpcError::from_application_error(Some("aws#AccessDenied"), None, br#"{"_message":"no"}"#);
    assert!(matches!(&e, IpcError::Unmodeled(u) if u.message == "no"));
    assert_eq!(e.model_type(), Some("aws#AccessDenied"));
    let e = IpcError::from_application_error(
        Some("aws.greengrass#UnauthorizedError"),
        None,
        b"{not json",
    );
    assert!(matches!(&e, IpcError::Unmodeled(u) if u.message == "{not json"));
    let e = IpcError::from_application_error(
        Some("aws.greengrass#UnauthorizedError"),
        None,
        br#"{"message": 5}"#,
    );
    assert!(matches!(e, IpcError::Unmodeled(_)));
    let e = IpcError::from_application_error(None, None, &[0xff, 0xfe, 0x00]);
    assert!(matches!(e, IpcError::Unmodeled(_)));
    let e = IpcError::from_application_error(Some("aws.greengrass#ConflictError"), None, b"");
    assert!(matches!(&e, IpcError::Unmodeled(u) if u.message == "aws.greengrass#ConflictError"));
    let e = IpcError::from_application_error(Some("aws.greengrass#InvalidTokenError"), None, b"{}");
    assert_eq!(e, IpcError::InvalidToken(InvalidTokenError::default()));
    assert!(e.is_retryable());
    assert_eq!(e.message(), "");
}

/// What the derived `Deserialize` of the shape makes of `body` (the decoding
/// `from_application_error` did before it decoded the members by hand), with the
/// `_message` fallback: the reference the hand-written decoding must equal.
fn derived_decode(model_type: &str, body: &Value) -> Option<IpcError> {
    fn shape<T: serde::de::DeserializeOwned>(body: &Value) -> Option<T> {
        serde_json::from_value(body.clone()).ok()
    }
    let fallback = body["_message"].as_str().map(str::to_owned);
    let with = |message: Option<String>| message.or(fallback.clone());
    macro_rules! message_only {
        ($($variant:ident($ty:ident)),+) => {
            $(
                if model_type == $ty::MODEL_TYPE {
                    let mut e: $ty = shape(body)?;
                    e.message = with(e.message);
                    return Some(IpcError::$variant(e));
                }
            )+
        };
    }
    message_only!(
        ComponentNotFound(ComponentNotFoundError),
        Conflict(ConflictError),
        FailedUpdateConditionCheck(FailedUpdateConditionCheckError),
        InvalidArguments(InvalidArgumentsError),
        InvalidArtifactsDirectoryPath(InvalidArtifactsDirectoryPathError),
        InvalidClientDeviceAuthToken(InvalidClientDeviceAuthTokenError),
        InvalidCredential(InvalidCredentialError),
        InvalidRecipeDirectoryPath(InvalidRecipeDirectoryPathError),
        InvalidToken(InvalidTokenError),
        Unauthorized(UnauthorizedError)
    );
    if model_type == ResourceNotFoundError::MODEL_TYPE {
        let mut e: ResourceNotFoundError = shape(body)?;
        e.message = with(e.message);
        return Some(IpcError::ResourceNotFound(e));
    }
    if model_type == ServiceError::MODEL_TYPE {
        let mut e: ServiceError = shape(body)?;
        e.message = with(e.message);
        return Some(IpcError::Service(e));
    }
    None
}

#[test]
fn application_error_members_decode_as_the_derived_deserialize_does() {
    // Every member in every JSON type (and absent, and null), with and without `_message`.
    let values = [
        None,
        Some(json!(null)),
        Some(json!("text")),
        Some(json!(5)),
        Some(json!(true)),
        Some(json!([])),
        Some(json!({"reasonCode": 135})),
    ];
    let members = [
        "message",
        "resourceType",
        "resourceName",
        "context",
        "_message",
    ];
    let mut bodies = vec![json!({}), json!({"other": 1, "_errorCode": "X"})];
    for member in members {
        for value in values.iter().flatten() {
            bodies.push(json!({ member: value }));
            bodies.push(json!({ member: value, "_message": "fallback" }));
            bodies.push(json!({ member: value, "message": "m", "resourceType": "t" }));
        }
    }
    let mut model_types: Vec<&str> = ERROR_MODEL_TYPES.to_vec();
    model_types.extend(["aws#AccessDenied", "aws.greengrass#Nope", ""]);
    let mut modeled = 0;
    for model_type in &model_types {
        for body in &bodies {
            let payload = serde_json::to_vec(body).expect("json");
            let got = IpcError::from_application_error(Some(model_type), None, &payload);
            match derived_decode(model_type, body) {
                Some(expected) => {
                    modeled += 1;
                    assert_eq!(got, expected, "{model_type} {body}");
                }
                None => assert!(
                    matches!(&got, IpcError::Unmodeled(u) if u.model_type.as_deref() == Some(*model_type)),
                    "{model_type} {body}: {got:?}"
                ),
            }
        }
    }
    // Both outcomes were exercised for every modeled type.
    assert!(
        modeled > 12 * 10 && modeled < 12 * bodies.len(),
        "{modeled}"
    );
}

#[test]
fn error_payloads_for_the_emulator() {
    let e: IpcError = ServiceError::new("bad")
        .with_context(json!({"reasonCode": 135}))
        .into();
    let (model_type, body) = e.to_payload(false);
    assert_eq!(model_type.as_deref(), Some("aws.greengrass#ServiceError"));
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        body,
        json!({"message": "bad", "context": {"reasonCode": 135}, "_service": "aws.greengrass#GreengrassCoreIPC",
               "_message": "bad", "_errorCode": "ServiceError"})
    );
    let (_, lite) = e.to_payload(true);
    let lite: Value = serde_json::from_slice(&lite).expect("json");
    assert_eq!(
        lite,
        json!({"_message": "bad", "_errorCode": "ServiceError"})
    );
    // both forms decode back to the same error
    for is_lite in [false, true] {
        let (mt, body) = e.to_payload(is_lite);
        let back = IpcError::from_application_error(mt.as_deref(), Some(e.content_type()), &body);
        assert_eq!(back.message(), "bad");
        assert_eq!(back.model_type(), e.model_type());
    }
    let u = IpcError::from_application_error(None, Some("text/plain"), b"InternalServerError");
    assert_eq!(u.to_payload(false), (None, b"InternalServerError".to_vec()));
    assert_eq!(u.content_type(), "text/plain");
    assert_eq!(ERROR_MODEL_TYPES.len(), 12);
    assert_eq!(e.error_code(), Some("ServiceError"));
}

// --- operations and helpers ---------------------------------------------------------------

#[test]
fn operation_table_lookup() {
    let info = operation_info("PublishToIoTCore").expect("known");
    assert_eq!(info.operation, <PublishToIoTCore as Operation>::OPERATION);
    assert_eq!(info.auth_service, Some("aws.greengrass.ipc.mqttproxy"));
    assert!(!info.streaming);
    let info = operation_info("aws.greengrass#SubscribeToTopic").expect("known");
    assert_eq!(
        info.event,
        Some(<SubscriptionResponseMessage as Shape>::MODEL_TYPE)
    );
    assert_eq!(
        operation_info("ValidateAuthorizationToken").and_then(|i| i.auth_service),
        None
    );
    assert_eq!(OPERATIONS.iter().filter(|o| o.streaming).count(), 7);
}

#[test]
fn builders_and_accessors() {
    let req = CreateLocalDeploymentRequest::new()
        .with_root_component_versions_to_add([("com.example.A", "1.0.0")])
        .with_component_to_configuration([("com.example.A", json!({"MERGE": {"k": 1}}))])
        .with_failure_handling_policy(FailureHandlingPolicy::DoNothing);
    assert_eq!(
        enc(&req),
        json!({"rootComponentVersionsToAdd": {"com.example.A": "1.0.0"},
               "componentToConfiguration": {"com.example.A": {"MERGE": {"k": 1}}},
               "failureHandlingPolicy": "DO_NOTHING"})
    );
    let ev: IoTCoreMessage = dec(json!({"message": {"topicName": "a/b", "payload": "aGk="}}));
    assert_eq!((ev.topic(), ev.payload()), ("a/b", &b"hi"[..]));
    let m = PutComponentMetricRequest::new([Metric::new("m", MetricUnitType::Count, 3.0)]);
    assert_eq!(
        enc(&m),
        json!({"metrics": [{"name": "m", "unit": "COUNT", "value": 3.0}]})
    );
    let up = UpdateConfigurationRequest::merge(["a", "b"], json!({"c": 1}));
    assert_eq!(
        up.key_path.as_deref(),
        Some(&["a".to_string(), "b".to_string()][..])
    );
    let ev: ComponentUpdatePolicyEvents =
        dec(json!({"preUpdateEvent": {"deploymentId": "d", "isGgcRestarting": true}}));
    assert!(
        matches!(ev, ComponentUpdatePolicyEvents::PreUpdateEvent(ref p) if p.is_ggc_restarting)
    );
    let r = CreateDebugPasswordResponse::new("p", "u", Timestamp::from_secs_f64(1.5))
        .with_certificate_sha256_hash("h");
    assert_eq!(enc(&r)["certificateSHA256Hash"], "h");
    let ev = PublishMessage::json(json!({"x": 1})).into_event("a/b");
    assert_eq!(
        ev,
        SubscriptionResponseMessage::new_json("a/b", json!({"x": 1}))
    );
    let ev = PublishMessage::binary(b"hi".to_vec()).into_event("t");
    assert_eq!((ev.topic(), ev.binary()), ("t", Some(&b"hi"[..])));
}

#!/usr/bin/env python3
"""Generate everything derived from the list of operations, from the machine-readable model.

Usage:  python3 tools/gen_model.py [path/to/greengrass-ipc-model.json]
        (default: tools/model/greengrass-ipc-model.json, the project's copy of the spec;
        the lite and nucleus facts come from tools/model/lite.json and nucleus.json)

Writes, and runs rustfmt on the Rust ones:
* src/model/{pubsub,iotcore,lifecycle,configuration,secrets,shadows,cli,clientdevices,
  metrics,tokens,operations}.rs: the typed shapes and `model::OPERATIONS`;
* src/operations/methods.rs: the list of `Client` methods (the macros that expand it are
  hand-written in src/operations.rs);
* src/operations.md: the crate-doc table of operations (included by src/lib.rs);
* src/emulator/common/operations.rs: the emulator's operation table (area, authorization
  facts, lite support) and `LITE_OPERATIONS`, consumed by the hand-written emulator code;
* src/emulator/handlers/table.rs: the emulator's handler table (each operation's typed
  handler, for the dispatcher);
* tests/generated/operations.rs: the per-operation lists of tests/operations.rs;
* README.md: the table of operations by area (between its `operations table` markers).
The error shapes (errors.rs), serde helpers (encoding.rs), Timestamp (timestamp.rs) and
convenience helpers (helpers.rs) are written by hand.

`.ci/run` runs this script and fails when the tree differs from its output.

Rules applied (see the spec, section 3 of greengrass-ipc.md):
* structure -> `#[non_exhaustive]` struct, fields snake_case with explicit `rename`;
  optional members are `Option<T>` (omitted when `None`, `null` read as `None`);
  required members are plain fields. In shapes a client RECEIVES (reachable from a
  response or stream event), required members whose type has a natural default are
  `#[serde(default)]` and read `null` as that default, so a sloppy server does not
  break decoding. Required enums/unions/structures without a default stay strict.
* union -> `#[non_exhaustive]` enum, one newtype variant per member, one key on the wire.
* enum -> string enum with an `Unknown(String)` variant (`wire_enum!`); no `From<&str>`, and
  constructors/setters take the enum itself, so a misspelled value does not compile.
* names: a shape's Rust name writes an all-caps acronym as one word (`Qos`, `MqttMessage`,
  see `rust_name`); `Shape::MODEL_TYPE` keeps the model's name (`aws.greengrass#MQTTMessage`).
* list/map -> `Vec<T>` / `BTreeMap<String, T>` inline (no named Rust type).
* blob -> `Vec<u8>` (base64), timestamp -> `Timestamp`, document -> `serde_json::Value`.
"""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "tools", "model")
AREAS = ["pubsub", "iotcore", "lifecycle", "configuration", "secrets", "shadows", "cli",
         "clientdevices", "metrics", "tokens"]
AREA_DOCS = {
    "pubsub": "Local publish/subscribe messaging between components.",
    "iotcore": "MQTT messaging with AWS IoT Core through the nucleus' cloud connection.",
    "lifecycle": "Component lifecycle: state reporting, update deferral, pause/resume.",
    "configuration": "Component configuration: read, update, subscribe, validate.",
    "secrets": "Secret values from the secret manager component.",
    "shadows": "Local device shadows (shadow manager component).",
    "cli": "Local deployments and component management (Greengrass CLI component).",
    "clientdevices": "Client device authentication (client device auth component).",
    "metrics": "Component metrics.",
    "tokens": "IPC authorization token validation (stream manager only).",
}

# Human descriptions of supporting shapes (requests/responses/events get theirs from
# the operation summaries).
SHAPE_DOCS = {
    "BinaryMessage": "A message with an opaque binary payload.",
    "CertificateOptions": "Which certificate a `SubscribeToCertificateUpdates` stream reports.",
    "CertificateUpdate": "A new certificate and key pair issued by the client device auth component. "
                         "Sensitive: `Debug` redacts the private key.",
    "CertificateUpdateEvent": "Stream event of `SubscribeToCertificateUpdates`.",
    "ClientDeviceCredential": "The credential a client device presents for identity verification.",
    "ComponentDetails": "Name, version, state and configuration of a component.",
    "ComponentUpdatePolicyEvents": "Stream event of `SubscribeToComponentUpdates`: a deployment "
                                   "is about to update components, or has done so.",
    "ConfigurationUpdateEvent": "Notice that a component's configuration changed under a key path.",
    "ConfigurationUpdateEvents": "Stream event of `SubscribeToConfigurationUpdate`.",
    "ConfigurationValidityReport": "A component's verdict on a proposed configuration.",
    "ConnectionStatusEvent": "The state of the nucleus' AWS IoT Core MQTT connection.",
    "CredentialDocument": "The credential a client device presents to get an auth token.",
    "DeploymentStatusDetails": "Detailed outcome of a local deployment.",
    "IoTCoreConnectionStatusEvent": "Stream event of `SubscribeToIoTCoreConnectionStatus`.",
    "IoTCoreMessage": "Stream event of `SubscribeToIoTCore`: one MQTT message.",
    "JsonMessage": "A message whose payload is a JSON document.",
    "LocalDeployment": "A local deployment and its status.",
    "MqttCredential": "MQTT connection credentials of a client device. Sensitive: `Debug` redacts "
                      "the password.",
    "MqttMessage": "An MQTT message received from AWS IoT Core.",
    "MessageContext": "Context of a received message (the concrete topic).",
    "Metric": "One metric data point.",
    "PostComponentUpdateEvent": "A deployment finished updating components.",
    "PreComponentUpdateEvent": "A deployment is about to update components (the component may defer it).",
    "PublishMessage": "The message of a `PublishToTopic` request: JSON or binary.",
    "RunWithInfo": "The system user and resource limits a component runs with.",
    "SecretValue": "A secret's value: text or binary. Sensitive: `Debug` redacts it.",
    "SubscriptionResponseMessage": "Stream event of `SubscribeToTopic`: one JSON or binary message.",
    "SystemResourceLimits": "Resource limits of a component's processes (Linux).",
    "UserProperty": "An MQTT 5 user property.",
    "ValidateConfigurationUpdateEvent": "A proposed configuration for the component to validate.",
    "ValidateConfigurationUpdateEvents": "Stream event of `SubscribeToValidateConfigurationUpdates`.",
    "CertificateType": "Kind of certificate.",
    "ConfigurationValidityStatus": "Verdict of a configuration validity report.",
    "ConnectionStatus": "MQTT connection state.",
    "DeploymentStatus": "Status of a local deployment.",
    "DetailedDeploymentStatus": "Detailed outcome of a deployment.",
    "FailureHandlingPolicy": "What a deployment does when it fails.",
    "LifecycleState": "Lifecycle state of a component.",
    "MetricUnitType": "Unit of a metric.",
    "PayloadFormat": "MQTT 5 payload format indicator (wire values `\"0\"` and `\"1\"`).",
    "Qos": "MQTT quality of service (wire values `\"0\"` and `\"1\"`, strings).",
    "ReceiveMode": "Whether a local subscription receives the subscriber's own messages.",
    "ReportedLifecycleState": "The state a component may report for itself.",
    "RequestStatus": "Outcome of a restart/stop request.",
}

# Members whose values are secrets: (shape, wire name). A whole union is listed as (shape, None).
SENSITIVE = {
    "CertificateUpdate": {"privateKey"},
    "GetClientDeviceAuthTokenResponse": {"clientDeviceAuthToken"},
    "SecretValue": {"secretString", "secretBinary"},
    "MqttCredential": {"password"},
    "CreateDebugPasswordResponse": {"password"},
    "AuthorizeClientDeviceActionRequest": {"clientDeviceAuthToken"},
    "ValidateAuthorizationTokenRequest": {"token"},
}

# Hand-written notes on members, where the servers differ: (shape, wire name) -> lines.
MEMBER_NOTES = {
    ("SubscribeToTopicRequest", "receiveMode"): [
        "",
        "What each server does with it: the Java nucleus honours it, and when it is unset uses",
        "`RECEIVE_MESSAGES_FROM_OTHERS` for a filter with a `+` or final `#` level and",
        "`RECEIVE_ALL_MESSAGES` otherwise (`PubSubIPCEventStreamAgent.validateReceiveMode`).",
        "Nucleus lite (2.6.0) ignores it: a component always receives its own messages on a",
        "matching topic (its SubscribeToTopic handler reads only `topic`). The emulator does",
        "the same in each flavour.",
    ],
}

RUST_KEYWORDS = {"type", "match", "ref", "move", "self", "fn", "mod", "use", "impl", "loop"}


def snake(name):
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    s = s.lower()
    return s + "_" if s in RUST_KEYWORDS else s


def camel(name):
    return name[0].upper() + name[1:]


def enum_variant(name):
    return "".join(p.capitalize() for p in name.lower().split("_"))


def rust_name(name):
    """A shape's Rust type name: an all-caps acronym becomes one capitalized word (Rust API
    guidelines C-CASE): `QOS` -> `Qos`, `MQTTMessage` -> `MqttMessage`. A run of capitals
    is an acronym when it is followed by a capitalized word, a digit or the end; `IoT`
    (a single capital after lower case) stays, so names derived from the operations keep
    the service's spelling (`PublishToIoTCoreRequest`)."""
    return re.sub(r"[A-Z]{2,}(?=[A-Z][a-z]|[0-9]|$)", lambda m: m.group(0).capitalize(), name)


def rustify(model):
    """Renames the structure/union/enum shapes to their Rust names (keys and `target`s).
    Each shape keeps its `modelName`, the name the protocol uses, so the wire is unchanged."""
    renames = {n: rust_name(n) for n, s in model["shapes"].items()
               if s["kind"] in ("structure", "union", "enum") and rust_name(n) != n}
    for op in model["operations"]:
        for role in ("request", "response", "streamEvent"):
            if op.get(role) in renames:
                raise SystemExit(f"operation {op['name']}: its {role} would be renamed")

    def fix(node):
        if isinstance(node, dict):
            if node.get("target") in renames:
                node["target"] = renames[node["target"]]
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)
    fix(model["shapes"])
    model["shapes"] = {renames.get(n, n): s for n, s in model["shapes"].items()}
    return model


def load_model(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(MODEL_DIR, "greengrass-ipc-model.json")
    with open(path) as f:
        return rustify(json.load(f))


def load_facts(name):
    with open(os.path.join(MODEL_DIR, name)) as f:
        return json.load(f)


class Gen:
    def __init__(self, model):
        self.m = model
        self.shapes = model["shapes"]
        self.ops = model["operations"]
        self.area_of = {}
        self.role = {}  # shape -> (op, 'request'|'response'|'event')
        self.inbound = set()
        self._assign()
        self.defaultable_cache = {}

    # -- analysis ---------------------------------------------------------------
    def targets(self, shape):
        s = self.shapes[shape]
        out = []
        for mm in s.get("members", []):
            if "target" in mm:
                out.append(mm["target"])
            for k in ("items", "values"):
                if k in mm and "target" in mm[k]:
                    out.append(mm[k]["target"])
        for k in ("items", "values"):
            if k in s and "target" in s[k]:
                out.append(s[k]["target"])
        return out

    def reach(self, shape, seen=None):
        seen = set() if seen is None else seen
        if shape in seen:
            return seen
        seen.add(shape)
        for t in self.targets(shape):
            self.reach(t, seen)
        return seen

    def _assign(self):
        for op in self.ops:
            roots = [(op["request"], "request"), (op["response"], "response")]
            if op.get("streamEvent"):
                roots.append((op["streamEvent"], "event"))
            for root, role in roots:
                self.role[root] = (op, role)
                for sh in sorted(self.reach(root)):
                    self.area_of.setdefault(sh, op["area"])
                    if role != "request":
                        self.inbound.add(sh)
        for name, s in self.shapes.items():
            if name not in self.area_of and s["kind"] in ("structure", "union", "enum"):
                raise SystemExit(f"shape {name} is not reachable from any operation")

    def defaultable_shape(self, name):
        """A structure derives Default when every field can default."""
        if name in self.defaultable_cache:
            return self.defaultable_cache[name]
        s = self.shapes[name]
        self.defaultable_cache[name] = False
        ok = s["kind"] == "structure" and all(
            (not mm.get("required")) or (name in self.inbound and self.defaultable_type(mm))
            for mm in s["members"]
        )
        self.defaultable_cache[name] = ok
        return ok

    def defaultable_type(self, mm):
        t = mm["type"]
        if t in ("string", "boolean", "integer", "long", "double", "blob", "timestamp",
                 "document", "list", "map"):
            return True
        if t == "structure":
            return self.defaultable_shape(mm["target"])
        return False

    # -- types ------------------------------------------------------------------
    def rust_type(self, t):
        ty = t["type"]
        if ty == "string":
            return "String"
        if ty == "boolean":
            return "bool"
        if ty == "integer":
            return "i32"
        if ty == "long":
            return "i64"
        if ty == "double":
            return "f64"
        if ty == "blob":
            return "Vec<u8>"
        if ty == "timestamp":
            return "Timestamp"
        if ty == "document":
            return "Value"
        if ty in ("structure", "union", "enum"):
            return t["target"]
        if ty == "list":
            return f"Vec<{self.rust_type(t['items'])}>"
        if ty == "map":
            return f"BTreeMap<String, {self.rust_type(t['values'])}>"
        raise SystemExit(f"unknown type {ty}")

    def type_desc(self, t):
        ty = t["type"]
        if ty in ("structure", "union", "enum"):
            return f"[`{t['target']}`]"
        if ty == "list":
            return f"list of {self.type_desc(t['items'])}" + (f" (`{t['target']}`)" if "target" in t else "")
        if ty == "map":
            return f"map of string to {self.type_desc(t['values'])}" + (f" (`{t['target']}`)" if "target" in t else "")
        return {"blob": "blob (base64 on the wire)",
                "timestamp": "timestamp (epoch seconds)",
                "document": "JSON document",
                "long": "64-bit integer", "integer": "32-bit integer",
                "double": "number"}.get(ty, ty)

    # setter argument type and conversion expression
    def arg(self, t, var):
        ty = t["type"]
        if ty == "list":
            item = self.rust_type(t["items"])
            return (f"impl IntoIterator<Item = impl Into<{item}>>",
                    f"{var}.into_iter().map(Into::into).collect()")
        if ty == "map":
            val = self.rust_type(t["values"])
            return (f"impl IntoIterator<Item = (impl Into<String>, impl Into<{val}>)>",
                    f"{var}.into_iter().map(|(k, v)| (k.into(), v.into())).collect()")
        if ty in ("boolean", "integer", "long", "double", "enum"):
            # An enum is taken as itself, not `impl Into`: a misspelled value must not
            # compile (an unknown one is sent only explicitly, as `Enum::Unknown(..)`).
            return self.rust_type(t), var
        return f"impl Into<{self.rust_type(t)}>", f"{var}.into()"

    # -- emitters ---------------------------------------------------------------
    def shape_doc(self, name):
        s = self.shapes[name]
        lines = []
        if name in self.role:
            op, role = self.role[name]
            what = {"request": "Request", "response": "Response", "event": "Stream event"}[role]
            lines.append(f"{what} of the [`{op['name']}`] operation.")
            lines.append("")
            lines.append(op["summary"])
            if role == "request":
                lines.append("")
                lines.append("Example: [requests by service area](crate::model#requests-by-service-area), "
                             "runnable against the in-process emulator.")
            if name == "SubscriptionResponseMessage":
                lines.append("")
                lines.append("Example: [`topic`](Self::topic) (reading an event, building one for a "
                             "handler's unit test) and [`Subscription`](crate::Subscription) (receiving them).")
            if role == "response" and op["kind"] == "streaming":
                lines.append("")
                lines.append("The initial response of the stream; it does not carry the Smithy `messages` "
                             "member (events arrive separately as "
                             f"[`{op['streamEvent']}`]).")
        else:
            lines.append(SHAPE_DOCS.get(name, f"The `{name}` shape."))
        if s.get("note"):
            lines += ["", f"Note: {s['note']}"]
        if s.get("source"):
            lines += ["", f"Defined by the SDKs only ({s['source']})."]
        if name in self.inbound and s["kind"] == "structure" and any(
                mm.get("required") and self.defaultable_type(mm) for mm in s["members"]):
            lines += ["", "Decoding is lenient: required members missing or `null` on the wire decode "
                          "to their default value (empty string, `false`, `0`, empty list...)."]
        lines += ["", f"Model type `{s['modelName']}`."]
        return lines

    def member_doc(self, shape, mm):
        if self.shapes[shape]["kind"] == "union":
            req = "Union member"
        else:
            req = "Required" if mm.get("required") else "Optional"
        lines = [f"`{mm['wire']}`: {self.type_desc(mm)}. {req}."]
        if mm.get("note"):
            lines.append(f"Note: {mm['note']}.")
        if mm.get("range"):
            lines.append(f"Range: {mm['range'].get('min')}..={mm['range'].get('max')}.")
        if mm.get("deprecated"):
            lines.append("Deprecated: servers normally omit it.")
        if mm["wire"] in SENSITIVE.get(shape, ()):
            lines.append("Secret: redacted in `Debug` output.")
        lines += MEMBER_NOTES.get((shape, mm["wire"]), [])
        return lines

    @staticmethod
    def doc(lines, indent=""):
        return "".join(f"{indent}///{(' ' + l) if l else ''}\n" for l in lines)

    def emit_enum(self, name, s):
        out = "wire_enum! {\n"
        out += self.doc(self.shape_doc(name), "    ")
        out += f"    {name} {{\n"
        for v in s["values"]:
            out += f"        /// Wire value `\"{v['value']}\"`.\n"
            out += f"        {enum_variant(v['name'])} = \"{v['value']}\",\n"
        out += "    }\n}\n"
        return out

    def emit_struct(self, name, s):
        members = s["members"]
        inbound = name in self.inbound
        derives = ["Clone", "PartialEq", "Serialize", "Deserialize"]
        if name not in SENSITIVE:
            derives.insert(1, "Debug")
        if self.defaultable_shape(name):
            derives.append("Default")
        out = self.doc(self.shape_doc(name))
        out += f"#[derive({', '.join(derives)})]\n#[non_exhaustive]\npub struct {name} {{\n"
        for mm in members:
            field = snake(mm["name"])
            ty = self.rust_type(mm)
            attrs = [f'rename = "{mm["wire"]}"']
            required = mm.get("required")
            if not required:
                attrs += ["default", 'skip_serializing_if = "Option::is_none"']
                if mm["type"] == "blob":
                    attrs.append('with = "encoding::opt_blob"')
                ty = f"Option<{ty}>"
            elif mm["type"] == "document":
                # Like Python (None is dropped), a null document is omitted; absent reads as null.
                attrs += ["default", 'skip_serializing_if = "Value::is_null"']
            elif inbound and self.defaultable_type(mm):
                attrs.append("default")
                if mm["type"] == "blob":
                    attrs += ['serialize_with = "encoding::blob::serialize"',
                              'deserialize_with = "encoding::blob::deserialize_nullable"']
                else:
                    attrs.append('deserialize_with = "encoding::null_as_default"')
            elif mm["type"] == "blob":
                attrs.append('with = "encoding::blob"')
            out += self.doc(self.member_doc(name, mm), "    ")
            out += f"    #[serde({', '.join(attrs)})]\n"
            out += f"    pub {field}: {ty},\n"
        out += "}\n\n"
        out += self.emit_shape_impl(name, s)
        # constructors / setters
        req = [mm for mm in members if mm.get("required")]
        opt = [mm for mm in members if not mm.get("required")]
        out += f"impl {name} {{\n"
        if req:
            out += f"    /// Creates a `{name}` from its required members; optional members are unset.\n"
        else:
            out += f"    /// Creates a `{name}` with every (optional) member unset.\n"
        params = []
        inits = []
        for mm in members:
            field = snake(mm["name"])
            if mm.get("required"):
                aty, conv = self.arg(mm, field)
                params.append(f"{field}: {aty}")
                inits.append(f"{field}: {conv}" if conv != field else field)
            else:
                inits.append(f"{field}: None")
        if len(params) > 7:
            out += "    #[allow(clippy::too_many_arguments)]\n"
        out += f"    pub fn new({', '.join(params)}) -> Self {{\n"
        out += f"        Self {{ {', '.join(inits)} }}\n" if inits else "        Self {}\n"
        out += "    }\n"
        for mm in opt:
            field = snake(mm["name"])
            aty, conv = self.arg(mm, "value")
            out += f"\n    /// Sets `{mm['wire']}`.\n"
            out += f"    pub fn with_{field.rstrip('_')}(mut self, value: {aty}) -> Self {{\n"
            out += f"        self.{field} = Some({conv});\n        self\n    }}\n"
        out += "}\n"
        if len(req) == 1 and self.role.get(name, (None, None))[1] == "request":
            out += self.emit_request_from(name, req[0])
        if name in SENSITIVE:
            out += "\n" + self.emit_redacted_debug_struct(name, s)
        return out

    def emit_request_from(self, name, mm):
        """A request with one required member converts from that member's natural types,
        so that an operation method (which takes `impl Into<Request>`) accepts it bare:
        `client.subscribe_to_topic("sensors/+", handler)`, `get_configuration(["a", "b"])`,
        `update_state(ReportedLifecycleState::Running)`."""
        field = snake(mm["name"])
        ty = mm["type"]
        if ty == "string":
            sources = [("", "&str", field), ("", "String", field)]
        elif ty == "list" and mm["items"]["type"] == "string":
            sources = [("<const N: usize>", "[&str; N]", field),
                       ("", "&[&str]", f"{field}.iter().copied()"),
                       ("", "Vec<String>", field)]
        elif ty == "enum":
            sources = [("", self.rust_type(mm), field)]
        else:
            return ""
        out = ""
        for generics, source, arg in sources:
            out += (f"\n/// [`{name}::new`] from `{field}`.\n"
                    f"impl{generics} From<{source}> for {name} {{\n"
                    f"    fn from({field}: {source}) -> Self {{\n"
                    f"        Self::new({arg})\n    }}\n}}\n")
        return out

    def emit_redacted_debug_struct(self, name, s):
        out = f"impl fmt::Debug for {name} {{\n"
        out += "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n"
        out += f"        f.debug_struct(\"{name}\")\n"
        for mm in s["members"]:
            field = snake(mm["name"])
            if mm["wire"] in SENSITIVE[name]:
                if mm.get("required"):
                    out += f"            .field(\"{field}\", &encoding::Redacted)\n"
                else:
                    out += f"            .field(\"{field}\", &self.{field}.as_ref().map(|_| encoding::Redacted))\n"
            else:
                out += f"            .field(\"{field}\", &self.{field})\n"
        out += "            .finish()\n    }\n}\n"
        return out

    def emit_union(self, name, s):
        derives = ["Clone", "PartialEq", "Serialize"]
        if name not in SENSITIVE:
            derives.insert(1, "Debug")
        out = self.doc(self.shape_doc(name) + ["", "On the wire: a JSON object with exactly one of the "
                                               "member keys below."])
        out += f"#[derive({', '.join(derives)})]\n#[non_exhaustive]\npub enum {name} {{\n"
        arms = []
        for mm in s["members"]:
            var = camel(mm["name"])
            ty = self.rust_type(mm)
            out += self.doc(self.member_doc(name, mm), "    ")
            out += f"    #[serde(rename = \"{mm['wire']}\")]\n"
            if mm["type"] == "blob":
                out += f"    {var}(#[serde(serialize_with = \"encoding::blob::serialize\")] {ty}),\n"
                arms.append(f"    \"{mm['wire']}\" => {var}(encoding::Base64Blob),\n")
            else:
                out += f"    {var}({ty}),\n"
                arms.append(f"    \"{mm['wire']}\" => {var}({ty}),\n")
        out += "}\n\n"
        out += f"encoding::union_deserialize!({name} {{\n{''.join(arms)}}});\n\n"
        out += self.emit_shape_impl(name, s)
        if name in SENSITIVE:
            out += f"\nimpl fmt::Debug for {name} {{\n"
            out += "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n"
            out += "        match self {\n"
            for mm in s["members"]:
                var = camel(mm["name"])
                out += f"            {name}::{var}(_) => f.debug_tuple(\"{var}\").field(&encoding::Redacted).finish(),\n"
            out += "        }\n    }\n}\n"
        return out

    def emit_shape_impl(self, name, s):
        return (f"impl Shape for {name} {{\n"
                f"    const MODEL_TYPE: &'static str = \"{s['modelName']}\";\n}}\n\n")

    def emit_operation(self, op):
        name = op["name"]
        if name in self.shapes:
            raise SystemExit(f"operation {name} collides with a shape name")
        kind = "Streaming" if op["kind"] == "streaming" else "Request/response"
        auth = op.get("authorization")
        if auth and auth.get("service"):
            auth_line = (f"Authorization: policy service `{auth['service']}`, resource "
                         f"`{auth.get('resourceTemplate')}`.")
        elif auth:
            auth_line = ("Authorization: only " +
                         ", ".join(f"`{c}`" for c in auth.get("allowedCallers", [])) + " may call it.")
        else:
            auth_line = "Authorization: none."
        lines = [f"The `{name}` operation (`{op['operationHeader']}`).", "", op["summary"], ""]
        lines.append(f"{kind}: request [`{op['request']}`], response [`{op['response']}`]" +
                     (f", events [`{op['streamEvent']}`]." if op.get("streamEvent") else "."))
        lines.append("")
        lines.append(auth_line)
        lines.append("")
        lines.append("Modeled errors: " + ", ".join(f"[`{e}`]" for e in op["errors"]) + ".")
        if op.get("notes"):
            lines += ["", op["notes"]]
        out = self.doc(lines)
        out += "#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]\n"
        out += f"pub struct {name};\n\n"
        out += f"impl Operation for {name} {{\n"
        out += f"    const NAME: &'static str = \"{name}\";\n"
        out += f"    const OPERATION: &'static str = \"{op['operationHeader']}\";\n"
        out += f"    type Request = {op['request']};\n"
        out += f"    type Response = {op['response']};\n}}\n"
        if op.get("streamEvent"):
            out += f"\nimpl StreamingOperation for {name} {{\n    type Event = {op['streamEvent']};\n}}\n"
        return out

    HEADER = ("// @generated by tools/gen_model.py from greengrass-ipc-model.json. Do not edit by hand:\n"
              "// change the generator (or helpers.rs) and regenerate.\n\n")

    def emit_area(self, area):
        ops = [op for op in self.ops if op["area"] == area]
        names = [n for n in self.shapes if self.area_of.get(n) == area
                 and self.shapes[n]["kind"] in ("structure", "union", "enum")]
        # order: operations' request/response/event, then supporting shapes alphabetically
        ordered = []
        for op in ops:
            for r in (op["request"], op["response"], op.get("streamEvent")):
                if r and r in names and r not in ordered:
                    ordered.append(r)
        ordered += sorted(n for n in names if n not in ordered)
        body = []
        for op in ops:
            body.append(self.emit_operation(op))
        for n in ordered:
            s = self.shapes[n]
            if s["kind"] == "structure":
                body.append(self.emit_struct(n, s))
            elif s["kind"] == "union":
                body.append(self.emit_union(n, s))
            else:
                body.append(self.emit_enum(n, s))
        text = "\n".join(body)
        uses = ["#[allow(unused_imports)]\nuse super::*;"]
        if "fmt::" in text:
            uses.append("use std::fmt;")
        if "BTreeMap" in text:
            uses.append("use std::collections::BTreeMap;")
        uses.append("#[allow(unused_imports)]\nuse serde::{Deserialize, Serialize};")
        if re.search(r"\bValue\b", text.replace("Value::is_null", "")) or "Value::is_null" in text:
            uses.append("use serde_json::Value;")
        if "wire_enum!" in text:
            uses.append("use super::encoding::wire_enum;")
        head = self.HEADER.replace("// @generated", "//! " + AREA_DOCS[area] + "\n//!\n//! Operations: " +
                                   ", ".join(f"[`{op['name']}`]" for op in ops) + ".\n\n// @generated", 1)
        return head + "\n".join(uses) + "\n\n" + text

    def emit_operations(self):
        out = ("//! The operation table: one [`OperationInfo`] per operation of the service.\n\n" +
               self.HEADER.replace("\n\n", "\n", 1) + "\n")
        out += "use super::OperationInfo;\n\n"
        out += "/// Every operation of the service (35), in model order.\n"
        out += "pub const OPERATIONS: &[OperationInfo] = &[\n"
        for op in self.ops:
            auth = op.get("authorization") or {}

            def opt(v):
                return f"Some({json.dumps(v)})" if v else "None"
            out += "    OperationInfo {\n"
            out += f"        name: \"{op['name']}\",\n"
            out += f"        operation: \"{op['operationHeader']}\",\n"
            out += f"        area: \"{op['area']}\",\n"
            out += f"        streaming: {'true' if op['kind'] == 'streaming' else 'false'},\n"
            out += f"        request: \"{self.shapes[op['request']]['modelName']}\",\n"
            out += f"        response: \"{self.shapes[op['response']]['modelName']}\",\n"
            ev = op.get("streamEvent")
            out += f"        event: {opt(self.shapes[ev]['modelName'] if ev else None)},\n"
            out += f"        errors: &[{', '.join(json.dumps(self.m['errors'][e]['modelName']) for e in op['errors'])}],\n"
            out += f"        auth_service: {opt(auth.get('service'))},\n"
            out += f"        auth_resource: {opt(auth.get('resourceTemplate'))},\n"
            out += f"        summary: {json.dumps(op['summary'])},\n"
            out += "    },\n"
        out += "];\n"
        return out

    # -- everything else derived from the operation list -------------------------
    @staticmethod
    def method_name(op_name):
        return snake(op_name.replace("IoT", "Iot"))

    def auth_sentence(self, op):
        """The client method doc's authorization line."""
        auth = op.get("authorization")
        hard = self.m["authorizationModel"]["hardcodedCallerOperations"].get(op["name"])
        if auth and auth.get("service"):
            line = (f"Needs a policy for `{auth['service']}` (resource `{auth['resourceTemplate']}`) "
                    "in the component's `accessControl`")
            if isinstance(hard, str):
                line += f", and the {hard.replace('caller name', 'caller' + chr(39) + 's name').replace(chr(34), '`')} (hard-coded in the nucleus)"
            return line + "."
        if auth:
            callers = ", ".join(f"`{c}`" for c in auth.get("allowedCallers", []))
            return f"Only the component {callers} may call it (hard-coded in the nucleus)."
        return "Needs no authorization policy."

    def emit_client_methods(self):
        out = ("//! The list of `Client` methods, one per operation; the macros that expand it are\n"
               "//! in `src/operations.rs`.\n\n" + self.HEADER.replace("\n\n", "\n", 1) + "\n")
        out += "use super::*;\n\n"
        for macro, kind in (("request_response_methods", "request-response"), ("streaming_methods", "streaming")):
            out += f"{macro}! {{\n"
            for op in self.ops:
                if op["kind"] != kind:
                    continue
                summary = op["summary"].rstrip(".")
                m = self.method_name(op["name"])
                out += f"    /// {summary} (`{op['operationHeader']}`).\n    ///\n"
                out += f"    /// {self.auth_sentence(op)}\n"
                out += f"    {m}, {m}_with => {op['name']};\n"
            out += "}\n\n"
        return out.rstrip("\n") + "\n"

    def doc_auth_cell(self, op):
        auth = op.get("authorization")
        hard = self.m["authorizationModel"]["hardcodedCallerOperations"].get(op["name"])
        if auth and auth.get("service"):
            cell = f"`{auth['service']}` on `{auth['resourceTemplate']}`"
            if isinstance(hard, str):
                cell += " (" + hard.replace(chr(34), "`") + ")"
            return cell
        if auth:
            return "only " + ", ".join(f"`{c}`" for c in auth.get("allowedCallers", []))
        return "none"

    def emit_doc_table(self):
        out = ("<!-- @generated by tools/gen_model.py from greengrass-ipc-model.json. Do not edit by hand. -->\n\n"
               f"Every operation of the service ({len(self.ops)}) is a method on [`Client`]; each has a `_with`\n"
               "variant taking [`CallOptions`]. A component's recipe must grant the listed IPC service\n"
               "in its `accessControl` (see `README.md` for a recipe); \"none\" means the nucleus does\n"
               "not check a policy.\n\n"
               "| Area | Method | Kind | Authorization (`accessControl` service on resource) |\n"
               "|---|---|---|---|\n")
        for op in self.ops:
            m = self.method_name(op["name"])
            kind = "stream" if op["kind"] == "streaming" else "call"
            out += f"| {op['area']} | [`{m}`](Client::{m}) | {kind} | {self.doc_auth_cell(op)} |\n"
        return out

    def emit_emulator_operations(self, lite, nucleus):
        names = {op["name"] for op in self.ops}
        for extra in list(lite["operations"]) + list(nucleus["notGrantable"]):
            if extra not in names:
                raise SystemExit(f"tools/model: {extra} is not an operation of the model")
        out = ("//! The emulator's operation table: per-operation facts from the service model\n"
               "//! (`tools/model/greengrass-ipc-model.json`), the lite facts\n"
               "//! (`tools/model/lite.json`) and the nucleus facts (`tools/model/nucleus.json`).\n"
               "//! Read by the authorizer (`auth.rs`, through `facts.rs`) and the dispatcher\n"
               "//! (`dispatch.rs`); a leaf: each operation's handler is in `handlers/table.rs`.\n\n" +
               self.HEADER.replace("\n\n", "\n", 1) + "\n")
        out += self.EMULATOR_FACTS_STRUCT
        out += ("/// Operations Greengrass nucleus lite (2.6.0) serves: each service's operation table\n"
                "/// under `modules/ggipcd/src/services/` in aws-greengrass-lite (sources per operation\n"
                "/// in `tools/model/lite.json`). `SubscribeToIoTCoreConnectionStatus` is included as\n"
                "/// well: it is added on the lite branch `dev/subscribe-to-iotcore-connection-status-ipc`\n"
                "/// and the service spec dates it to lite 2.7.0. Any other operation gets a\n"
                "/// `ServiceError`, as lite answers an operation it has no handler for.\n")
        out += "pub const LITE_OPERATIONS: &[&str] = &[\n"
        for op in self.ops:
            if op["name"] in lite["operations"]:
                out += f"    \"{op['name']}\",\n"
        out += "];\n\n"
        out += f"/// Every operation of the service ({len(self.ops)}), in model order.\n"
        out += "pub(crate) const OPERATION_FACTS: &[OperationFacts] = &[\n"

        def opt(v):
            return f"Some({json.dumps(v)})" if v else "None"
        for op in self.ops:
            auth = op.get("authorization") or {}
            service = auth.get("service")
            callers = auth.get("allowedCallers", []) if auth.get("type") == "fixed-caller" else []
            out += "    OperationFacts {\n"
            out += f"        name: \"{op['name']}\",\n"
            out += f"        area: \"{op['area']}\",\n"
            out += f"        streaming: {'true' if op['kind'] == 'streaming' else 'false'},\n"
            out += f"        service: {opt(service)},\n"
            out += f"        resource: {opt(auth.get('resourceTemplate') if service else None)},\n"
            out += f"        mqtt_matching: {'true' if auth.get('matching') == 'mqtt' else 'false'},\n"
            out += f"        grantable: {'false' if op['name'] in nucleus['notGrantable'] or not service else 'true'},\n"
            out += f"        checked: {'true' if auth else 'false'},\n"
            out += f"        fixed_callers: &[{', '.join(json.dumps(c) for c in callers)}],\n"
            out += f"        lite: {'true' if op['name'] in lite['operations'] else 'false'},\n"
            out += "    },\n"
        out += "];\n"
        return out

    EMULATOR_FACTS_STRUCT = """/// What the emulator knows about one operation (one row of [`OPERATION_FACTS`]).
pub(crate) struct OperationFacts {
    /// Short name, e.g. `PublishToTopic`.
    pub(crate) name: &'static str,
    /// Service area (the emulator module that serves it).
    #[allow(dead_code)]
    pub(crate) area: &'static str,
    /// Whether the operation streams events.
    #[allow(dead_code)]
    pub(crate) streaming: bool,
    /// The `accessControl` service identifier whose policies authorize it.
    pub(crate) service: Option<&'static str>,
    /// Template of the resource checked against policies, e.g. `{topic}`.
    #[allow(dead_code)]
    pub(crate) resource: Option<&'static str>,
    /// Whether the service's policy resources use MQTT wildcards.
    pub(crate) mqtt_matching: bool,
    /// Whether an `accessControl` policy may name it (false for `CancelLocalDeployment`,
    /// which the nucleus does not register under its service).
    pub(crate) grantable: bool,
    /// Whether the nucleus checks anything at all (a policy or a fixed caller).
    pub(crate) checked: bool,
    /// The only callers allowed, for operations restricted to fixed components.
    pub(crate) fixed_callers: &'static [&'static str],
    /// Whether nucleus lite 2.6.0 serves it.
    pub(crate) lite: bool,
}

"""

    def emit_emulator_handlers(self):
        out = ("//! The emulator's handler table: each operation's typed handler, in model order\n"
               "//! (the [`Unary`](crate::emulator::registry::Unary) or\n"
               "//! [`Streaming`](crate::emulator::registry::Streaming) implementation in\n"
               "//! `handlers/<area>.rs`, see `registry.rs`). Read by the dispatcher (`dispatch.rs`).\n\n" +
               self.HEADER.replace("\n\n", "\n", 1) + "\n")
        out += "use crate::emulator::registry::{self, Run};\nuse crate::model;\n\n"
        out += f"/// Every operation of the service ({len(self.ops)}) and its handler, in model order.\n"
        out += "pub(crate) const HANDLERS: &[(&str, Run)] = &[\n"
        for op in self.ops:
            run = "streaming" if op["kind"] == "streaming" else "unary"
            out += f"    (\"{op['name']}\", registry::{run}::<model::{op['name']}>),\n"
        out += "];\n"
        return out

    README_TITLES = {
        "pubsub": "Local pub/sub", "iotcore": "IoT Core MQTT", "lifecycle": "Lifecycle",
        "configuration": "Configuration", "secrets": "Secrets", "shadows": "Shadows",
        "cli": "Deployments and components", "clientdevices": "Client device auth",
        "metrics": "Metrics", "tokens": "Token validation",
    }

    def emit_readme_table(self):
        out = ("<!-- operations table: generated by tools/gen_model.py, do not edit by hand -->\n"
               "| Area | Operations | Methods |\n|---|---|---|\n")
        for area in AREAS:
            ops = [op for op in self.ops if op["area"] == area]
            methods = ", ".join(f"`{self.method_name(op['name'])}`" for op in ops)
            out += f"| {self.README_TITLES[area]} | {len(ops)} | {methods} |\n"
        return out + "<!-- end of operations table -->\n"

    def emit_test_lists(self):
        out = ("// The per-operation lists of tests/operations.rs (included there).\n" + self.HEADER + "\n")
        for fn, macro, kind, ty in (("request_response_calls", "request_response", "request-response", "Call"),
                                    ("streaming_calls", "streaming", "streaming", "Subscribe")):
            out += f"fn {fn}() -> Vec<(&'static str, {ty})> {{\n    {macro}! {{\n"
            for op in self.ops:
                if op["kind"] == kind:
                    out += f"        {self.method_name(op['name'])} => {op['name']},\n"
            out += "    }\n}\n\n"
        return out.rstrip("\n") + "\n"


def main():
    model = load_model(sys.argv)
    g = Gen(model)
    outdir = os.path.join(ROOT, "src", "model")
    written = []
    for area in AREAS:
        path = os.path.join(outdir, f"{area}.rs")
        with open(path, "w") as f:
            f.write(g.emit_area(area))
        written.append(path)
    derived = {
        os.path.join(outdir, "operations.rs"): g.emit_operations(),
        os.path.join(ROOT, "src", "operations", "methods.rs"): g.emit_client_methods(),
        os.path.join(ROOT, "src", "emulator", "common", "operations.rs"):
            g.emit_emulator_operations(load_facts("lite.json"), load_facts("nucleus.json")),
        os.path.join(ROOT, "src", "emulator", "handlers", "table.rs"): g.emit_emulator_handlers(),
        os.path.join(ROOT, "tests", "generated", "operations.rs"): g.emit_test_lists(),
    }
    for path, text in derived.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        written.append(path)
    subprocess.run(["rustfmt", "--edition", "2021"] + written, check=True)
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        readme = f.read()
    begin = readme.index("<!-- operations table:")
    end = readme.index("<!-- end of operations table -->\n") + len("<!-- end of operations table -->\n")
    with open(path, "w") as f:
        f.write(readme[:begin] + g.emit_readme_table() + readme[end:])
    written.append(path)
    path = os.path.join(ROOT, "src", "operations.md")
    with open(path, "w") as f:
        f.write(g.emit_doc_table())
    written.append(path)
    counts = {}
    for s in model["shapes"].values():
        counts[s["kind"]] = counts.get(s["kind"], 0) + 1
    print(f"wrote {len(written)} files; shapes by kind: {counts}; operations: {len(model['operations'])}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Golden JSON samples for every structure/union/error shape, serialized by the OFFICIAL
Python SDK (awsiotsdk, package `awsiot.greengrasscoreipc.model`).

For each structure, union and error shape of greengrass-ipc-model.json, this builds
instances of the SDK's model class (lists/maps are plain Python lists/dicts inside them,
enums plain strings, exactly as the SDK expects), calls the SDK's own `_to_payload()` and
stores `json.loads(json.dumps(payload))`. It also checks that the SDK decodes each sample
back to the same payload (`_from_payload` then `_to_payload`).

Output: tests/data/golden/<Shape>.json =
    {"shape": ..., "modelType": ..., "awsiotsdk": ..., "sampleNames": [...], "samples": [...]}

Usage:
    python3 -m venv /tmp/venv-gg && /tmp/venv-gg/bin/pip install awsiotsdk
    /tmp/venv-gg/bin/python tests/tools/golden/gen_golden.py [path/to/greengrass-ipc-model.json]
"""

import datetime
import importlib.metadata
import json
import os
import sys

from awsiot.greengrasscoreipc import model as sdk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUT = os.path.join(ROOT, "tests", "data", "golden")
UTC = datetime.timezone.utc

NON_UTF8 = b"\x00\xff\xfe\x80binary\xc3\x28"
DOCUMENT = {
    "k": None,
    "n": 1,
    "f": 2.5,
    "neg": -7,
    "s": "h\u00e9llo \u2713 \"quoted\" <tag> & a=b",
    "nested": {"list": [1, "two", None, {"x": True}], "empty": {}, "emptyList": []},
}
DOCUMENT_ALT = {"a": {"b": {"c": [None, [None]]}}, "big": 9007199254740993, "exp": 1.5e-7}

# Sample variants: name -> knobs
VARIANTS = {
    "all": dict(optional=True, empty=False, unknown_enum=False, alt=False),
    "required": dict(optional=False, empty=False, unknown_enum=False, alt=False),
    "empty_optionals": dict(optional=True, empty=True, unknown_enum=False, alt=False),
    "unknown_enums": dict(optional=True, empty=False, unknown_enum=True, alt=False),
    "alternate_values": dict(optional=True, empty=False, unknown_enum=False, alt=True),
}


def load_model(argv):
    if len(argv) > 1:
        path = argv[1]
    else:
        path = os.path.join(ROOT, "tools", "model", "greengrass-ipc-model.json")
    with open(path) as f:
        return json.load(f)


class Builder:
    def __init__(self, model):
        self.shapes = dict(model["shapes"])
        self.shapes.update(model["errors"])
        self.union_choice = 0

    def attr_names(self, name):
        """The SDK class' attribute names, in model member order."""
        cls = getattr(sdk, name)
        attrs = list(cls().__dict__.keys())
        members = self.shapes[name]["members"]
        if len(attrs) != len(members):
            raise SystemExit(f"{name}: SDK attributes {attrs} do not match model members")
        return cls, attrs

    def value(self, t, knobs, depth, member_name):
        ty = t["type"]
        alt = knobs["alt"]
        if ty == "string":
            if knobs["empty"]:
                return ""
            return f"{member_name} \u00e9\u2713/+#" if alt else f"{member_name}-value"
        if ty == "boolean":
            return not alt
        if ty == "integer":
            return 1 if alt else 42
        if ty == "long":
            return -1 if alt else 1234567890123
        if ty == "double":
            return 0.1 if alt else 1.5
        if ty == "blob":
            if knobs["empty"]:
                return b""
            return NON_UTF8 if not alt else b'{"state":{"desired":{"on":true}}}'
        if ty == "timestamp":
            # integral (written 1704067200.0 by Python), fractional, micro-second fraction
            secs = 1700000000.123456 if alt else (1704067200.5 if knobs["optional"] else 1704067200)
            return datetime.datetime.fromtimestamp(secs, UTC)
        if ty == "document":
            if knobs["empty"]:
                return {}
            return DOCUMENT_ALT if alt else DOCUMENT
        if ty == "enum":
            if knobs["unknown_enum"]:
                return "FUTURE_VALUE_NOT_IN_MODEL"
            values = self.shapes[t["target"]]["values"]
            return values[-1]["value"] if alt else values[0]["value"]
        if ty == "structure":
            return self.instance(t["target"], knobs, depth + 1)
        if ty == "union":
            return self.union_instance(t["target"], knobs, depth + 1, None)
        if ty == "list":
            if knobs["empty"]:
                return []
            return [self.value(t["items"], knobs, depth + 1, member_name + "0"),
                    self.value(t["items"], knobs, depth + 1, member_name + "1")]
        if ty == "map":
            if knobs["empty"]:
                return {}
            return {"key.one": self.value(t["values"], knobs, depth + 1, member_name + "A"),
                    "com.example.Two": self.value(t["values"], knobs, depth + 1, member_name + "B")}
        raise SystemExit(f"unknown type {ty}")

    def instance(self, name, knobs, depth=0):
        cls, attrs = self.attr_names(name)
        obj = cls()
        for attr, mm in zip(attrs, self.shapes[name]["members"]):
            if mm.get("required") or knobs["optional"]:
                setattr(obj, attr, self.value(mm, knobs, depth, mm["name"]))
        return obj

    def union_instance(self, name, knobs, depth, member_index):
        cls, attrs = self.attr_names(name)
        members = self.shapes[name]["members"]
        if member_index is None:
            member_index = (1 if knobs["alt"] else 0) % len(members)
        obj = cls()
        mm = members[member_index]
        setattr(obj, attrs[member_index], self.value(mm, knobs, depth, mm["name"]))
        return obj

    def samples(self, name):
        shape = self.shapes[name]
        out = []
        seen = set()

        def add(label, obj):
            payload = obj._to_payload()
            text = json.dumps(payload)  # exactly what the SDK puts on the wire
            back = type(obj)._from_payload(json.loads(text))._to_payload()
            if json.dumps(back) != text:
                raise SystemExit(f"{name}/{label}: SDK does not round-trip its own payload")
            if text in seen:
                return
            seen.add(text)
            out.append((label, json.loads(text)))

        if shape["kind"] == "union":
            for i, mm in enumerate(shape["members"]):
                for vname, knobs in VARIANTS.items():
                    add(f"{mm['name']}/{vname}", self.union_instance(name, knobs, 0, i))
        else:
            for vname, knobs in VARIANTS.items():
                add(vname, self.instance(name, knobs))
        return out


def main():
    model = load_model(sys.argv)
    version = importlib.metadata.version("awsiotsdk")
    b = Builder(model)
    os.makedirs(OUT, exist_ok=True)
    names = [n for n, s in model["shapes"].items() if s["kind"] in ("structure", "union")]
    names += list(model["errors"].keys())
    total = 0
    for name in sorted(names):
        samples = b.samples(name)
        total += len(samples)
        model_type = b.shapes[name]["modelName"]
        doc = {
            "shape": name,
            "modelType": model_type,
            "awsiotsdk": version,
            "sampleNames": [label for label, _ in samples],
            "samples": [payload for _, payload in samples],
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(f"awsiotsdk {version}: {len(names)} shapes, {total} samples -> {OUT}")


if __name__ == "__main__":
    main()

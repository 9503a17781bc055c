#!/usr/bin/env python3
"""Record event-stream frames written by the AWS C library (through the official
`awscrt` Python package) and store them as test data for the Rust codec.

The script runs a tiny fake event-stream RPC server on a Unix socket (a Python
thread), connects an `awscrt.eventstream.rpc.ClientConnection` to it, answers the
client's CONNECT with a CONNECT_ACK (flag 1, CONNECTION_ACCEPTED), then has the
client send messages carrying every header type and some edge values. Everything
the client writes is recorded, split into frames by their total_length, checked
(CRCs, lengths, and that every header we asked for is present with its value) and
written to `tests/data/awscrt/<name>.bin` plus `<name>.json` (same JSON format as
the aws-sdk-go `decoded/positive` vectors) and a README.md.

Usage (from the repository root):  pip install awscrt && python3 tests/tools/awscrt_frames.py
"""

import base64
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import uuid
import zlib
from concurrent.futures import Future
from importlib.metadata import version

from awscrt.eventstream import Header, HeaderType
from awscrt.eventstream.rpc import (
    ClientConnection,
    ClientConnectionHandler,
    ClientContinuationHandler,
    MessageFlag,
    MessageType,
)
from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup, SocketDomain, SocketOptions

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "awscrt")
TIMEOUT = 10

UUID_VALUE = uuid.UUID("b79bc914-de21-4e13-b8b2-bc47e85b7f0b")
NON_UTF8 = bytes([0xFF, 0xFE, 0x80, 0xC3, 0x28, 0x00, 0xED, 0xA0, 0x80])
BIG_PAYLOAD = bytes((i * 31 + 7) & 0xFF for i in range(70_000))

# name -> (headers, payload); each is sent as a PING protocol message on stream 0
# (awscrt appends :message-type, :message-flags and :stream-id itself).
PINGS = {
    "all_types": (
        [
            Header.from_bool("bool-true", True),
            Header.from_bool("bool-false", False),
            Header.from_byte("byte", 42),
            Header.from_int16("int16", 1234),
            Header.from_int32("int32", 123456789),
            Header.from_int64("int64", 1234567890123),
            Header.from_byte_buf("bytes", b"some bytes"),
            Header.from_string("string", "some string"),
            Header.from_timestamp("timestamp", 1700000000123),
            Header.from_uuid("uuid", UUID_VALUE),
        ],
        b"every header type",
    ),
    "int_limits": (
        [
            Header.from_byte("byte-min", -128),
            Header.from_byte("byte-max", 127),
            Header.from_byte("byte-neg", -1),
            Header.from_int16("int16-min", -32768),
            Header.from_int16("int16-max", 32767),
            Header.from_int32("int32-min", -2147483648),
            Header.from_int32("int32-max", 2147483647),
            Header.from_int32("int32-neg", -7),
            Header.from_int64("int64-min", -9223372036854775808),
            Header.from_int64("int64-max", 9223372036854775807),
            Header.from_int64("int64-neg", -42),
            Header.from_timestamp("timestamp-neg", -1),
            Header.from_timestamp("timestamp-max", 9223372036854775807),
            Header.from_timestamp("timestamp-min", -9223372036854775808),
            Header.from_int32("zero", 0),
        ],
        b"integer edges",
    ),
    "empty_values": (
        [
            Header.from_string("empty-string", ""),
            Header.from_byte_buf("empty-bytes", b""),
            Header.from_uuid("nil-uuid", uuid.UUID(int=0)),
        ],
        b"",
    ),
    "text_and_binary": (
        [
            Header.from_string("grüße-名前", "héllo wörld ✓ 🚀"),
            Header.from_byte_buf("non-utf8", NON_UTF8),
            Header.from_string("x" * 127, "long name (127 bytes)"),
            Header.from_string("long-string", "s" * 32767),
            Header.from_byte_buf("long-bytes", bytes(range(256)) * 127 + bytes(255)),
        ],
        "payload: ünïcödé ✓".encode() + NON_UTF8,
    ),
    "large_payload": ([Header.from_string("content-type", "application/octet-stream")], BIG_PAYLOAD),
    "no_custom_headers": ([], b"only the rpc headers"),
}

# Sent on a new stream: activate() (adds `operation`) then send_message().
STREAM_ACTIVATE = ([Header.from_string("service-model-type", "test#Request"), Header.from_bool("flag", True)],
                   b'{"hello":"world"}')
STREAM_MESSAGE = ([Header.from_int64("seq", 2)], b"second message")


def be32(b, at):
    return struct.unpack_from(">I", b, at)[0]


def signed32(v):
    return v - (1 << 32) if v >= (1 << 31) else v


def frame(headers, payload=b""):
    """Encode a frame (int32 headers only) with zlib.crc32; used for the CONNECT_ACK."""
    hb = b"".join(struct.pack(">B", len(n)) + n.encode() + b"\x04" + struct.pack(">i", v) for n, v in headers)
    total = 16 + len(hb) + len(payload)
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hb + payload
    return body + struct.pack(">I", zlib.crc32(body))


def split_frames(data):
    frames, at = [], 0
    while at < len(data):
        total = be32(data, at)
        assert total >= 16 and at + total <= len(data), "recording ends inside a frame"
        frames.append(data[at:at + total])
        at += total
    return frames


def decode(frame_bytes):
    """Independent decoder producing the JSON expectation (aws-sdk-go vector format)."""
    total, hlen, pcrc = be32(frame_bytes, 0), be32(frame_bytes, 4), be32(frame_bytes, 8)
    assert total == len(frame_bytes)
    assert pcrc == zlib.crc32(frame_bytes[:8])
    mcrc = be32(frame_bytes, total - 4)
    assert mcrc == zlib.crc32(frame_bytes[:-4])
    block, pos, headers = frame_bytes[12:12 + hlen], 0, []
    while pos < len(block):
        n = block[pos]
        name = block[pos + 1:pos + 1 + n].decode("utf-8")
        pos += 1 + n
        t = block[pos]
        pos += 1
        if t in (0, 1):
            value = t == 0
        elif t in (2, 3, 4, 5, 8):
            size = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8}[t]
            value = int.from_bytes(block[pos:pos + size], "big", signed=True)
            pos += size
        elif t in (6, 7):
            ln = struct.unpack_from(">H", block, pos)[0]
            raw = block[pos + 2:pos + 2 + ln]
            assert len(raw) == ln
            if t == 7:
                raw.decode("utf-8")
            value = base64.b64encode(raw).decode()
            pos += 2 + ln
        elif t == 9:
            value = base64.b64encode(block[pos:pos + 16]).decode()
            pos += 16
        else:
            raise AssertionError("unknown header type %d" % t)
        headers.append({"name": name, "type": t, "value": value})
    assert pos == hlen
    return {
        "total_length": total,
        "headers_length": hlen,
        "prelude_crc": signed32(pcrc),
        "headers": headers,
        "payload": base64.b64encode(frame_bytes[12 + hlen:-4]).decode(),
        "message_crc": signed32(mcrc),
    }


def expected_json_value(h):
    t = h.type
    if t in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return h.value
    if t == HeaderType.BYTE_BUF:
        return base64.b64encode(bytes(h.value)).decode()
    if t == HeaderType.STRING:
        return base64.b64encode(h.value.encode()).decode()
    if t == HeaderType.UUID:
        return base64.b64encode(h.value.bytes).decode()
    return int(h.value)


def check_contains(decoded, sent_headers, payload, rpc):
    """Every header we sent is on the wire with the same type and value; rpc headers too."""
    wire = {h["name"]: h for h in decoded["headers"]}
    assert len(wire) == len(decoded["headers"]), "duplicate header names"
    for h in sent_headers:
        w = wire[h.name]
        assert (w["type"], w["value"]) == (int(h.type), expected_json_value(h)), (h, w)
    for name, value in rpc.items():
        assert (wire[name]["type"], wire[name]["value"]) == (4, value), (name, wire[name])
    assert base64.b64decode(decoded["payload"]) == payload


class Server(threading.Thread):
    def __init__(self, path):
        super().__init__(daemon=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.recording = bytearray()
        self.error = None

    def run(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(TIMEOUT)
            with conn:
                while len(self.recording) < 12 or len(self.recording) < be32(self.recording, 0):
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise AssertionError("client closed before CONNECT")
                    self.recording += chunk
                conn.sendall(frame([(":message-type", 5), (":message-flags", 1), (":stream-id", 0)]))
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    self.recording += chunk
        except Exception as e:  # reported by the main thread
            self.error = e


class ConnHandler(ClientConnectionHandler):
    def __init__(self):
        self.connection = None
        self.acked = Future()

    def on_connection_setup(self, connection, error, **kwargs):
        self.connection = connection

    def on_connection_shutdown(self, reason, **kwargs):
        pass

    def on_protocol_message(self, headers, payload, message_type, flags, **kwargs):
        if message_type == MessageType.CONNECT_ACK and not self.acked.done():
            self.acked.set_result(flags)


class StreamHandler(ClientContinuationHandler):
    def on_continuation_message(self, headers, payload, message_type, flags, **kwargs):
        pass

    def on_continuation_closed(self, **kwargs):
        pass


def record():
    """Runs the client against the fake server; returns [(name, frame bytes, sent headers, payload, rpc)]."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ipc.sock")
        server = Server(path)
        server.start()
        elg = EventLoopGroup(1)
        bootstrap = ClientBootstrap(elg, DefaultHostResolver(elg))
        handler = ConnHandler()
        options = SocketOptions()
        options.domain = SocketDomain.Local
        ClientConnection.connect(handler=handler, host_name=path, port=0, bootstrap=bootstrap,
                                 socket_options=options).result(TIMEOUT)
        conn = handler.connection
        assert conn is not None, "no connection"

        plan = []  # (name, sent headers, payload, expected rpc int32 headers)
        connect_headers = [Header.from_string(":version", "0.1.0")]
        connect_payload = b'{"authToken": "tok123"}'
        conn.send_protocol_message(headers=connect_headers, payload=connect_payload,
                                   message_type=MessageType.CONNECT).result(TIMEOUT)
        plan.append(("connect", connect_headers, connect_payload,
                     {":message-type": 4, ":message-flags": 0, ":stream-id": 0}))
        assert handler.acked.result(TIMEOUT) == MessageFlag.CONNECTION_ACCEPTED

        for name, (headers, payload) in PINGS.items():
            conn.send_protocol_message(headers=headers, payload=payload,
                                       message_type=MessageType.PING).result(TIMEOUT)
            plan.append(("ping_" + name, headers, payload,
                         {":message-type": 2, ":message-flags": 0, ":stream-id": 0}))

        stream = conn.new_stream(StreamHandler())
        headers, payload = STREAM_ACTIVATE
        stream.activate(operation="test#Operation", headers=headers, payload=payload,
                        message_type=MessageType.APPLICATION_MESSAGE).result(TIMEOUT)
        plan.append(("stream_activate", headers + [Header.from_string("operation", "test#Operation")],
                     payload, {":message-type": 0, ":message-flags": 0, ":stream-id": 1}))
        headers, payload = STREAM_MESSAGE
        stream.send_message(headers=headers, payload=payload, message_type=MessageType.APPLICATION_MESSAGE,
                            flags=MessageFlag.TERMINATE_STREAM).result(TIMEOUT)
        plan.append(("stream_terminate", headers, payload,
                     {":message-type": 0, ":message-flags": 2, ":stream-id": 1}))

        conn.close()
        conn.shutdown_future.result(TIMEOUT)
        server.join(TIMEOUT)
        if server.error:
            raise server.error
        frames = split_frames(bytes(server.recording))
        assert len(frames) == len(plan), "expected %d frames, recorded %d" % (len(plan), len(frames))
        return [(name, f, h, p, rpc) for (name, h, p, rpc), f in zip(plan, frames)]


README = """# Event-stream frames written by the AWS C library

Generated by `tests/tools/awscrt_frames.py` with **awscrt {version}** (the official AWS CRT
Python package, whose encoder is the C library aws-c-event-stream), Python {python}.
Regenerate from the repository root with:

    pip install awscrt=={version}
    python3 tests/tools/awscrt_frames.py

The script runs a fake event-stream RPC server on a Unix socket, connects an
`awscrt.eventstream.rpc.ClientConnection` to it, answers CONNECT with a CONNECT_ACK
(flag 1), and records every byte the client writes: the CONNECT, one PING protocol
message (stream 0) per case below, then `new_stream().activate(...)` and a
`send_message(..., flags=TERMINATE_STREAM)` on stream 1. The recording is split into
frames; for each, `<name>.bin` is the frame exactly as the C library wrote it and
`<name>.json` its decoding in the aws-sdk-go `decoded/positive` JSON format
(`total_length`, `headers_length`, `prelude_crc` and `message_crc` as signed int32,
`headers` in wire order as name/type/value with byte buffers, strings and uuids as
base64 of the raw bytes, `payload` base64). The script verifies both CRCs with
`zlib.crc32` and that each header it asked for is on the wire with the same type and
value, plus the `:message-type` / `:message-flags` / `:stream-id` int32 headers.

Limits seen: this awscrt refuses header names longer than 127 bytes ("Header.name
exceeds max length"), the older aws-c-event-stream limit, so the longest name here is
127 bytes. `connect.bin` is byte-for-byte the same as the shared vector
`eventstream-rpc/client_connect.bin` (captured earlier through awsiotsdk).

Header order is whatever the C encoder produced (awscrt adds the RPC headers, and
`operation` on activate, itself); our codec keeps wire order, so the tests compare
headers in order and re-encode byte-for-byte.

| File | What it carries |
|---|---|
{rows}
"""

DESCRIPTIONS = {
    "connect": "CONNECT, `:version` string header, JSON payload",
    "ping_all_types": "all ten header types (bool true, bool false, byte, int16, int32, int64, byte buffer, string, timestamp, uuid)",
    "ping_int_limits": "min/max/negative values of byte, int16, int32, int64 and timestamp; zero",
    "ping_empty_values": "empty string, empty byte buffer, nil uuid, empty payload",
    "ping_text_and_binary": "non-ASCII UTF-8 name and value, non-UTF-8 byte buffer, 127-byte name, 32 767-byte string and byte buffer, mixed payload",
    "ping_large_payload": "70 000-byte payload",
    "ping_no_custom_headers": "only the three RPC headers",
    "stream_activate": "APPLICATION_MESSAGE activating stream 1 (`operation` header added by awscrt)",
    "stream_terminate": "APPLICATION_MESSAGE on stream 1 with TERMINATE_STREAM (flag 2)",
}


def main():
    crt_version = version("awscrt")
    recorded = record()
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, frame_bytes, headers, payload, rpc in recorded:
        decoded = decode(frame_bytes)
        check_contains(decoded, headers, payload, rpc)
        with open(os.path.join(OUT_DIR, name + ".bin"), "wb") as f:
            f.write(frame_bytes)
        with open(os.path.join(OUT_DIR, name + ".json"), "w") as f:
            json.dump(decoded, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print("%-24s %6d bytes, %2d headers" % (name, len(frame_bytes), len(decoded["headers"])))
    rows = "\n".join("| `%s.bin` | %s |" % (name, DESCRIPTIONS[name]) for name, *_ in recorded)
    with open(os.path.join(OUT_DIR, "README.md"), "w") as f:
        f.write(README.format(version=crt_version, python=sys.version.split()[0], rows=rows))
    print("wrote %d frames to %s (awscrt %s)" % (len(recorded), os.path.normpath(OUT_DIR), crt_version))


if __name__ == "__main__":
    main()

//! `cargo bench --bench ggipc`: the benchmark suite, side by side with the physical floor
//! (memcpy, raw Unix-socket ping-pong and one-way writes, measured in the same run) and
//! with the official Python client (`awsiotsdk`'s `GreengrassCoreIPCClientV2`) against the
//! same emulator.
//!
//! A hand-rolled harness (`harness = false`): it prints a table and writes the same rows to
//! `target/ggipc-bench/summary.json`. `GGIPC_BENCH_QUICK=1` shortens every scenario (smoke
//! run); `GGIPC_BENCH_NO_PYTHON=1` skips the official client; `GGIPC_BENCH_ONLY=codec,rtt`
//! runs only the named groups (codec, rtt, pipelined, events, footprint, official).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{bounded, Sender};
use ggipc::codec::{FrameDecoder, Limits, Message};
use ggipc::emulator::Emulator;
use ggipc::model::{
    PublishMessage, PublishToTopicRequest, PublishToTopicResponse, Shape, SubscribeToTopicRequest,
    SubscribeToTopicResponse, SubscriptionResponseMessage,
};
use ggipc::rpc::{MessageType, RpcMessage, FLAG_CONNECTION_ACCEPTED, FLAG_TERMINATE_STREAM};
use ggipc::Client;
use parking_lot::Mutex;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Settings and results
// ---------------------------------------------------------------------------------------

struct Settings {
    quick: bool,
    python: bool,
    only: Option<Vec<String>>,
    out_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        Settings {
            quick: flag("GGIPC_BENCH_QUICK"),
            python: !flag("GGIPC_BENCH_NO_PYTHON"),
            only: std::env::var("GGIPC_BENCH_ONLY")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect()),
            out_dir: target_dir.join("ggipc-bench"),
        }
    }
    /// `full` normally, `full / 20` (at least `min`) in quick mode.
    fn n(&self, full: usize, min: usize) -> usize {
        if self.quick {
            (full / 20).max(min)
        } else {
            full
        }
    }
    fn secs(&self, full: f64) -> Duration {
        Duration::from_secs_f64(if self.quick { full / 5.0 } else { full })
    }
    fn wants(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .map_or(true, |o| o.iter().any(|g| g == group))
    }
}

/// Whether a bigger or a smaller value is better, for the "met" column.
#[derive(Clone, Copy)]
enum Goal {
    /// value ≥ x
    AtLeast(f64),
    /// value ≤ x
    AtMost(f64),
    /// ratio ≥ x
    RatioAtLeast(f64),
    /// ratio ≤ x
    RatioAtMost(f64),
    None,
}

struct Row {
    scenario: String,
    value: Option<f64>,
    unit: &'static str,
    baseline: Option<f64>,
    baseline_what: String,
    target: String,
    goal: Goal,
    note: String,
}

impl Row {
    fn new(scenario: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            scenario: scenario.into(),
            value: Some(value),
            unit,
            baseline: None,
            baseline_what: String::new(),
            target: String::new(),
            goal: Goal::None,
            note: String::new(),
        }
    }
    fn not_measured(scenario: impl Into<String>, why: impl Into<String>) -> Row {
        Row {
            value: None,
            note: format!("not measured: {}", why.into()),
            ..Row::new(scenario, 0.0, "")
        }
    }
    fn baseline(mut self, value: f64, what: impl Into<String>) -> Row {
        self.baseline = Some(value);
        self.baseline_what = what.into();
        self
    }
    fn target(mut self, text: impl Into<String>, goal: Goal) -> Row {
        self.target = text.into();
        self.goal = goal;
        self
    }
    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
    fn ratio(&self) -> Option<f64> {
        match (self.value, self.baseline) {
            (Some(v), Some(b)) if b != 0.0 => Some(v / b),
            _ => None,
        }
    }
    fn met(&self) -> Option<bool> {
        let v = self.value?;
        match self.goal {
            Goal::AtLeast(x) => Some(v >= x),
            Goal::AtMost(x) => Some(v <= x),
            Goal::RatioAtLeast(x) => Some(self.ratio()? >= x),
            Goal::RatioAtMost(x) => Some(self.ratio()? <= x),
            Goal::None => None,
        }
    }
    fn json(&self) -> serde_json::Value {
        let mut o = json!({
            "scenario": self.scenario,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_what": self.baseline_what,
            "ratio": self.ratio(),
        });
        if !self.target.is_empty() {
            o["target"] = json!(self.target);
            o["met"] = json!(self.met());
        }
        if !self.note.is_empty() {
            o["note"] = json!(self.note);
        }
        o
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 100_000.0 {
        format!("{:.0}", v)
    } else if a >= 100.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

fn print_table(rows: &[Row]) -> String {
    let mut lines = vec![
        "| scenario | value | baseline (same run) | ratio | target | met |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for r in rows {
        let value = match r.value {
            Some(v) => format!("{} {}", fmt_num(v), r.unit),
            None => r.note.clone(),
        };
        let baseline = match r.baseline {
            Some(b) => format!("{} ({})", fmt_num(b), r.baseline_what),
            None => "-".into(),
        };
        let ratio = r.ratio().map_or("-".into(), |x| format!("{x:.3}"));
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario,
            value,
            baseline,
            ratio,
            if r.target.is_empty() { "-" } else { &r.target },
            met
        ));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| r.value.is_some() && !r.note.is_empty())
        .map(|r| format!("- {}: {}", r.scenario, r.note))
        .collect();
    let mut text = lines.join("\n");
    if !notes.is_empty() {
        text.push_str("\n\nNotes:\n");
        text.push_str(&notes.join("\n"));
    }
    text
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

const TOPIC: &str = "bench/topic";
const PAYLOAD: usize = 128;

fn publish_request(topic: &str) -> PublishToTopicRequest {
    PublishToTopicRequest::binary(topic, vec![0x5a; PAYLOAD])
}

fn encode(m: &RpcMessage) -> Bytes {
    m.to_frame()
        .to_bytes(&Limits::default())
        .expect("encodable")
}

/// The request frame `publish_to_topic` writes and the reply the nucleus sends back.
fn round_trip_frames() -> (Bytes, Bytes) {
    let payload = serde_json::to_vec(&publish_request(TOPIC)).expect("json");
    let mut request = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        1,
        Some(PublishToTopicRequest::MODEL_TYPE),
        payload,
    );
    request.operation = Some("aws.greengrass#PublishToTopic".into());
    let reply = response_message(1, PublishToTopicResponse::MODEL_TYPE, FLAG_TERMINATE_STREAM);
    (encode(&request), encode(&reply))
}

fn response_message(stream_id: i32, model_type: &str, flags: i32) -> RpcMessage {
    RpcMessage::json(
        MessageType::ApplicationMessage,
        flags,
        stream_id,
        Some(model_type),
        &b"{}"[..],
    )
}

/// The event frame a 128-byte binary message becomes on `stream_id`.
fn event_frame(stream_id: i32, topic: &str) -> Bytes {
    let event = PublishMessage::binary(vec![0x5a; PAYLOAD]).into_event(topic);
    let payload = serde_json::to_vec(&event).expect("json");
    encode(&RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        stream_id,
        Some(SubscriptionResponseMessage::MODEL_TYPE),
        payload,
    ))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn socket_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ggipc-bench-{}-{tag}.sock", std::process::id()))
}

// ---------------------------------------------------------------------------------------
// A lean responder: the least a server can do per request (decode, answer, batched writes)
// ---------------------------------------------------------------------------------------

/// The connections' writers and the stream ids of the subscriptions opened on them.
type Streams = Arc<Mutex<Vec<(Arc<Mutex<UnixStream>>, i32)>>>;

/// A minimal eventstream-RPC server on its own thread: accepts connections, acknowledges
/// CONNECT, answers every PublishToTopic with an empty response (one write per batch of
/// requests read together), and answers SubscribeToTopic by registering the stream so the
/// bench can push events on it.
struct LeanServer {
    path: PathBuf,
    streams: Streams,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl LeanServer {
    fn start(tag: &str) -> LeanServer {
        let path = socket_path(tag);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind lean server");
        let streams: Streams = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (streams.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for socket in listener.incoming() {
                if st.load(Ordering::Acquire) {
                    break;
                }
                let Ok(socket) = socket else { continue };
                let s = s.clone();
                thread::spawn(move || lean_serve(socket, s));
            }
        });
        LeanServer {
            path,
            streams,
            stop,
            accept: Some(accept),
        }
    }

    fn client(&self, event_queue: usize) -> Client {
        Client::builder()
            .socket_path(&self.path)
            .auth_token("lean")
            .event_queue(event_queue, 1 << 30)
            .connect()
            .expect("connect to the lean server")
    }
}

impl Drop for LeanServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lean_serve(socket: UnixStream, streams: Streams) {
    let mut read_half = socket.try_clone().expect("clone");
    let writer = Arc::new(Mutex::new(socket));
    let mut decoder = FrameDecoder::new(Limits::default());
    let limits = Limits::default();
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        out.clear();
        while let Ok(Some(frame)) = decoder.next_message() {
            let Ok(m) = RpcMessage::from_frame(frame) else {
                return;
            };
            let reply = match (m.message_type, m.operation.as_deref()) {
                (MessageType::Connect, _) => Some(RpcMessage::new(
                    MessageType::ConnectAck,
                    FLAG_CONNECTION_ACCEPTED,
                    0,
                )),
                (MessageType::Ping, _) => Some(RpcMessage::new(MessageType::PingResponse, 0, 0)),
                (_, Some("aws.greengrass#SubscribeToTopic")) => {
                    let r = response_message(m.stream_id, SubscribeToTopicResponse::MODEL_TYPE, 0);
                    // Write the response now, then register, so no event overtakes it.
                    let mut w = writer.lock();
                    let _ = w.write_all(&out);
                    out.clear();
                    let _ = w.write_all(&encode(&r));
                    streams.lock().push((writer.clone(), m.stream_id));
                    None
                }
                (_, Some(_)) => Some(response_message(
                    m.stream_id,
                    PublishToTopicResponse::MODEL_TYPE,
                    FLAG_TERMINATE_STREAM,
                )),
                _ => None,
            };
            if let Some(r) = reply {
                let _ = r.to_frame().encode(&limits, &mut out);
            }
        }
        if !out.is_empty() && writer.lock().write_all(&out).is_err() {
            return;
        }
        match decoder.read_from(&mut read_half) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Codec
// ---------------------------------------------------------------------------------------

fn time_loop(budget: Duration, mut step: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut iterations = 0u64;
    loop {
        for _ in 0..32 {
            step();
        }
        iterations += 32;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return (iterations, elapsed);
        }
    }
}

fn bench_codec(s: &Settings, rows: &mut Vec<Row>) {
    let budget = s.secs(0.4);
    for (label, size) in [("64 B", 64usize), ("1 KiB", 1024), ("64 KiB", 64 * 1024)] {
        let payload = Bytes::from(vec![0xa5u8; size]);
        let frame: Message = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            7,
            Some(SubscriptionResponseMessage::MODEL_TYPE),
            payload,
        )
        .to_frame();
        let limits = Limits::default();
        let encoded = frame.to_bytes(&limits).expect("encode");
        let flen = encoded.len();

        // Baseline: a plain copy of the same bytes.
        let mut dst = vec![0u8; flen];
        let (n, t) = time_loop(budget, || {
            dst.copy_from_slice(std::hint::black_box(&encoded));
            std::hint::black_box(&mut dst);
        });
        let memcpy = (n as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        // Encode: into a reused buffer, as the writer does.
        let mut out = BytesMut::with_capacity(flen);
        let (n, t) = time_loop(budget, || {
            out.clear();
            std::hint::black_box(&frame)
                .encode(&limits, &mut out)
                .expect("encode");
            std::hint::black_box(&out);
        });
        let enc = (n as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        // Decode: a FrameDecoder fed a chunk of back-to-back frames (≈64 KiB), as the I/O
        // thread is (the copy into its buffer is counted: a socket read does it).
        let per_chunk = (64 * 1024 / flen).max(1);
        let mut chunk = Vec::with_capacity(per_chunk * flen);
        for _ in 0..per_chunk {
            chunk.extend_from_slice(&encoded);
        }
        let mut decoder = FrameDecoder::new(limits);
        let mut frames = 0u64;
        let start = Instant::now();
        let mut t = Duration::ZERO;
        while t < budget {
            for _ in 0..8 {
                decoder.extend(&chunk);
                while let Some(m) = decoder.next_message().expect("decode") {
                    std::hint::black_box(&m);
                    frames += 1;
                }
            }
            t = start.elapsed();
        }
        let dec = (frames as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        let what = "memcpy MB/s";
        rows.push(
            Row::new(format!("codec encode {label} frame"), enc, "MB/s").baseline(memcpy, what),
        );
        let mut row =
            Row::new(format!("codec decode {label} frame"), dec, "MB/s").baseline(memcpy, what);
        if size == 1024 {
            row = row.target("≥ 1000 MB/s", Goal::AtLeast(1000.0));
        }
        rows.push(row);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Round trip, 3. pipelined throughput
// ---------------------------------------------------------------------------------------

/// Raw ping-pong over a Unix socket pair between two threads: `req` bytes one way,
/// `resp` bytes back, the echo side on its own thread.
struct RawPingPong {
    socket: UnixStream,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    echo: Option<thread::JoinHandle<()>>,
}

impl RawPingPong {
    fn new(req: usize, resp: usize) -> RawPingPong {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let echo = thread::spawn(move || {
            let mut inbuf = vec![0u8; req];
            let out = vec![1u8; resp];
            while b.read_exact(&mut inbuf).is_ok() {
                if b.write_all(&out).is_err() {
                    break;
                }
            }
        });
        RawPingPong {
            socket: a,
            out: vec![2u8; req],
            inbuf: vec![0u8; resp],
            echo: Some(echo),
        }
    }
    fn once(&mut self) {
        self.socket.write_all(&self.out).expect("write");
        self.socket.read_exact(&mut self.inbuf).expect("read");
    }
}

impl Drop for RawPingPong {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Some(e) = self.echo.take() {
            let _ = e.join();
        }
    }
}

/// The same ping-pong, but the reply is read by a separate reader thread and handed to
/// the caller over a channel: the floor of any design with an I/O thread (ggipc's).
struct RawHop {
    socket: UnixStream,
    out: Vec<u8>,
    replies: crossbeam_channel::Receiver<()>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl RawHop {
    fn new(req: usize, resp: usize) -> RawHop {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let mut reader = a.try_clone().expect("clone");
        let echo = thread::spawn(move || {
            let mut inbuf = vec![0u8; req];
            let out = vec![1u8; resp];
            while b.read_exact(&mut inbuf).is_ok() {
                if b.write_all(&out).is_err() {
                    break;
                }
            }
        });
        let (tx, replies) = bounded(1);
        let io = thread::spawn(move || {
            let mut inbuf = vec![0u8; resp];
            while reader.read_exact(&mut inbuf).is_ok() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        RawHop {
            socket: a,
            out: vec![2u8; req],
            replies,
            threads: vec![echo, io],
        }
    }
    fn once(&mut self) {
        self.socket.write_all(&self.out).expect("write");
        self.replies.recv().expect("reply");
    }
}

impl Drop for RawHop {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs the contenders in alternating blocks (so that they share whatever else the
/// machine is doing), `n` timed operations each after a warm-up; sorted latencies in ns.
fn interleaved_latencies(n: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Vec<u64>> {
    const BLOCKS: usize = 20;
    let per_block = (n / BLOCKS).max(1);
    let mut lat: Vec<Vec<u64>> = contenders.iter().map(|_| Vec::with_capacity(n)).collect();
    for c in contenders.iter_mut() {
        for _ in 0..per_block {
            c();
        }
    }
    for _ in 0..BLOCKS {
        for (c, l) in contenders.iter_mut().zip(lat.iter_mut()) {
            for _ in 0..per_block {
                let t = Instant::now();
                c();
                l.push(t.elapsed().as_nanos() as u64);
            }
        }
    }
    for l in &mut lat {
        l.sort_unstable();
    }
    lat
}

struct RttFigures {
    emulator_p50: f64,
    emulator_p99: f64,
}

fn bench_round_trip(s: &Settings, rows: &mut Vec<Row>) -> RttFigures {
    let n = s.n(40_000, 2000);
    let (req, resp) = round_trip_frames();
    let mut raw = RawPingPong::new(req.len(), resp.len());
    let lean = LeanServer::start("rtt");
    let lean_client = lean.client(1024);
    let emu = Emulator::start().expect("emulator");
    let emu_client = emu.connect().expect("connect");
    let request = publish_request(TOPIC);
    let mut raw_op = || raw.once();
    let mut hop = RawHop::new(req.len(), resp.len());
    let mut hop_op = || hop.once();
    let mut lean_op = || {
        lean_client
            .publish_to_topic(request.clone())
            .expect("publish");
    };
    let mut emu_op = || {
        emu_client
            .publish_to_topic(request.clone())
            .expect("publish");
    };
    let lat = interleaved_latencies(
        n,
        &mut [&mut raw_op, &mut lean_op, &mut emu_op, &mut hop_op],
    );
    let (raw50, raw99) = (percentile(&lat[0], 0.5), percentile(&lat[0], 0.99));
    let raw_what = format!("raw ping-pong {}/{} B", req.len(), resp.len());
    let ours = &lat[1];
    rows.push(
        Row::new(
            "round trip p50, lean responder",
            percentile(ours, 0.5),
            "µs",
        )
        .baseline(raw50, raw_what.clone())
        .target("≤ 1.5× raw", Goal::RatioAtMost(1.5)),
    );
    rows.push(
        Row::new(
            "round trip p99, lean responder",
            percentile(ours, 0.99),
            "µs",
        )
        .baseline(raw99, raw_what.clone()),
    );
    rows.push(
        Row::new(
            "raw ping-pong + I/O-thread hop p50 (floor of the design)",
            percentile(&lat[3], 0.5),
            "µs",
        )
        .baseline(raw50, raw_what.clone())
        .note("the reply is read by another thread and handed over a channel, as in ggipc"),
    );
    let figures = RttFigures {
        emulator_p50: percentile(&lat[2], 0.5),
        emulator_p99: percentile(&lat[2], 0.99),
    };
    rows.push(
        Row::new("round trip p50, emulator", figures.emulator_p50, "µs")
            .baseline(raw50, raw_what.clone())
            .note("the emulator parses JSON, routes through its broker and records each call"),
    );
    rows.push(
        Row::new("round trip p99, emulator", figures.emulator_p99, "µs").baseline(raw99, raw_what),
    );
    figures
}

fn client_round_trips(client: &Client, n: usize) -> Vec<u64> {
    let request = publish_request(TOPIC);
    let mut op = || {
        client.publish_to_topic(request.clone()).expect("publish");
    };
    interleaved_latencies(n, &mut [&mut op]).remove(0)
}

/// Best of `reps` runs of each contender, alternating: `contenders[i]()` returns a rate.
fn best_of_interleaved(reps: usize, contenders: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
    let mut best = vec![0.0f64; contenders.len()];
    for _ in 0..reps {
        for (c, b) in contenders.iter_mut().zip(best.iter_mut()) {
            *b = b.max(c());
        }
    }
    best
}

/// `threads` raw ping-pong pairs side by side for `d`: total ops/s.
fn raw_pairs_throughput(threads: usize, req: usize, resp: usize, d: Duration) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = vec![];
    for _ in 0..threads {
        let (barrier, stop) = (barrier.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let mut pair = RawPingPong::new(req, resp);
            barrier.wait();
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                pair.once();
                ops += 1;
            }
            ops
        }));
    }
    barrier.wait();
    let t = Instant::now();
    thread::sleep(d);
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    ops as f64 / t.elapsed().as_secs_f64()
}

fn client_throughput(client: &Client, threads: usize, d: Duration) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (client, barrier, stop) = (client.clone(), barrier.clone(), stop.clone());
            thread::spawn(move || {
                let request = publish_request(TOPIC);
                barrier.wait();
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    client.publish_to_topic(request.clone()).expect("publish");
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    thread::sleep(d);
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    ops as f64 / t.elapsed().as_secs_f64()
}

fn bench_pipelined(s: &Settings, rows: &mut Vec<Row>) {
    let d = s.secs(0.7);
    let (req, resp) = round_trip_frames();
    let lean = LeanServer::start("tput");
    let client = lean.client(1024);
    for threads in [1usize, 4, 8] {
        let mut raw = || raw_pairs_throughput(threads, req.len(), resp.len(), d);
        let mut ours = || client_throughput(&client, threads, d);
        let best = best_of_interleaved(3, &mut [&mut raw, &mut ours]);
        let mut row = Row::new(
            format!("pipelined publish, {threads} thread(s), lean responder"),
            best[1],
            "ops/s",
        )
        .baseline(best[0], format!("{threads} raw ping-pong pair(s)"));
        if threads == 8 {
            row = row.target("≥ 100k ops/s", Goal::AtLeast(100_000.0));
        }
        rows.push(row);
    }
    drop(client);
    drop(lean);
    let emu = Emulator::start().expect("emulator");
    let client = emu.connect().expect("connect");
    let ours = client_throughput(&client, 8, d);
    rows.push(
        Row::new("pipelined publish, 8 threads, emulator", ours, "ops/s")
            .note("the emulator serves one connection on one thread and parses JSON per call"),
    );
}

// ---------------------------------------------------------------------------------------
// 4. Event delivery
// ---------------------------------------------------------------------------------------

/// One writer thread writes `n` frames of `frame_len` bytes, one `write` per frame; one
/// reader thread reads them. Frames/s.
fn raw_one_way(frame_len: usize, n: usize) -> f64 {
    let (mut a, mut b) = UnixStream::pair().expect("pair");
    let total = frame_len * n;
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        while got < total {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        Instant::now()
    });
    let frame = vec![3u8; frame_len];
    let t = Instant::now();
    for _ in 0..n {
        a.write_all(&frame).expect("write");
    }
    let end = reader.join().expect("reader");
    n as f64 / (end - t).as_secs_f64()
}

struct Counter {
    seen: AtomicU64,
    target: u64,
    done: Sender<Instant>,
}

fn counting_handler(counter: Arc<Counter>) -> impl FnMut(SubscriptionResponseMessage) + Send {
    move |e: SubscriptionResponseMessage| {
        std::hint::black_box(&e);
        if counter.seen.fetch_add(1, Ordering::Relaxed) + 1 == counter.target {
            let _ = counter.done.send(Instant::now());
        }
    }
}

struct Delivery {
    rate: f64,
    dropped: u64,
    delivered: u64,
}

/// Subscribes `subs` times, then `push(stream ids)` sends `total` events in all; returns
/// the handler-side rate from the first write to the last handler call.
fn deliver(
    client: &Client,
    subs: usize,
    total: usize,
    push: impl FnOnce(&[i32]) -> Instant,
) -> Delivery {
    let (done_tx, done_rx) = bounded(1);
    let counter = Arc::new(Counter {
        seen: AtomicU64::new(0),
        target: total as u64,
        done: done_tx,
    });
    let subscriptions: Vec<_> = (0..subs)
        .map(|i| {
            client
                .subscribe_to_topic(
                    SubscribeToTopicRequest::new(format!("{TOPIC}/{i}")),
                    counting_handler(counter.clone()),
                )
                .expect("subscribe")
        })
        .collect();
    let ids: Vec<i32> = subscriptions.iter().map(|s| s.stream_id()).collect();
    let start = push(&ids);
    let end = done_rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| Instant::now());
    let delivered = counter.seen.load(Ordering::Relaxed);
    let dropped = subscriptions.iter().map(|s| s.stats().dropped).sum();
    Delivery {
        rate: delivered as f64 / (end - start).as_secs_f64(),
        dropped,
        delivered,
    }
}

fn bench_events(s: &Settings, rows: &mut Vec<Row>) {
    let total = s.n(1_000_000, 20_000);
    let frame_len = event_frame(1, &format!("{TOPIC}/0")).len();
    let raw_what = format!("raw one-way {frame_len} B writes");

    for subs in [1usize, 4] {
        let lean = LeanServer::start(&format!("events{subs}"));
        let client = lean.client(total + 1);
        let mut last = None;
        let mut raw = || raw_one_way(frame_len, total);
        let mut ours = || {
            let d = deliver(&client, subs, total, |ids| {
                let conns = lean.streams.lock().clone();
                let frames: Vec<(Arc<Mutex<UnixStream>>, Bytes)> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let (w, _) = conns.iter().find(|(_, sid)| sid == id).expect("registered");
                        (w.clone(), event_frame(*id, &format!("{TOPIC}/{i}")))
                    })
                    .collect();
                let t = Instant::now();
                let mut w = frames[0].0.lock();
                for k in 0..total {
                    w.write_all(&frames[k % subs].1).expect("push");
                }
                t
            });
            let rate = d.rate;
            last = Some(d);
            rate
        };
        let best = best_of_interleaved(if s.quick { 1 } else { 3 }, &mut [&mut raw, &mut ours]);
        let d = last.expect("ran");
        let mut note = format!("{} of {total} delivered in the last run", d.delivered);
        if d.dropped > 0 {
            note.push_str(&format!(", {} dropped", d.dropped));
        }
        rows.push(
            Row::new(
                format!("events, {subs} subscription(s), lean pusher"),
                best[1],
                "events/s",
            )
            .baseline(best[0], raw_what.clone())
            .target("≥ 0.5× raw", Goal::RatioAtLeast(0.5))
            .note(format!("{note}; one write per event, as the baseline")),
        );
        drop(client);
    }
}

/// Events through the emulator's broker (`Emulator::publish`), for the comparison with
/// the official client.
fn emulator_events(emu: &Emulator, subs: usize, total: usize) -> Delivery {
    let client = emu
        .client_builder()
        .event_queue(total + 1, 1 << 30)
        .connect()
        .expect("connect");
    let message = PublishMessage::binary(vec![0x5a; PAYLOAD]);
    deliver(&client, subs, total, |_| {
        let t = Instant::now();
        // Every publish reaches all subscriptions: one topic per subscription, round robin.
        let topics: Vec<String> = (0..subs).map(|i| format!("{TOPIC}/{i}")).collect();
        for k in 0..total {
            emu.publish("bench.Publisher", &topics[k % subs], &message);
        }
        t
    })
}

// ---------------------------------------------------------------------------------------
// 5. Footprint
// ---------------------------------------------------------------------------------------

fn release_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

fn stripped_size(binary: &Path, out_dir: &Path) -> Result<u64, String> {
    let copy = out_dir.join(format!(
        "{}.stripped",
        binary.file_name().and_then(|n| n.to_str()).unwrap_or("bin")
    ));
    std::fs::copy(binary, &copy).map_err(|e| format!("copy {}: {e}", binary.display()))?;
    let status = Command::new("strip")
        .arg(&copy)
        .status()
        .map_err(|e| format!("strip: {e}"))?;
    if !status.success() {
        return Err(format!("strip failed on {}", copy.display()));
    }
    std::fs::metadata(&copy)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn build_example(name: &str) -> Result<PathBuf, String> {
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release --example {name} failed"));
    }
    let path = release_dir().join("examples").join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing", path.display()))
    }
}

/// A hello-world built with the same compiler: the floor of a stripped Rust binary.
fn hello_world_size(out_dir: &Path) -> Result<u64, String> {
    let src = out_dir.join("hello.rs");
    std::fs::write(&src, "fn main() { println!(\"hello\"); }\n").map_err(|e| e.to_string())?;
    let bin = out_dir.join("hello");
    let status = Command::new("rustc")
        .args(["-C", "opt-level=3", "--edition", "2021", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .map_err(|e| format!("rustc: {e}"))?;
    if !status.success() {
        return Err("rustc failed on hello.rs".into());
    }
    stripped_size(&bin, out_dir)
}

fn bench_footprint(s: &Settings, rows: &mut Vec<Row>) {
    let emu = Emulator::start().expect("emulator");
    match build_example("footprint") {
        Ok(bin) => {
            let out = Command::new(&bin)
                .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
                .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token())
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let text = String::from_utf8_lossy(&o.stdout).to_string();
                    let get = |k: &str| -> f64 {
                        text.split_whitespace()
                            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0.0)
                    };
                    let (before, after) = (get("rss_before_kib"), get("rss_after_kib"));
                    rows.push(
                        Row::new(
                            "footprint: RSS added by a client + 1 subscription",
                            after - before,
                            "KiB",
                        )
                        .baseline(before, "RSS before connecting, KiB")
                        .target("≤ 1024 KiB", Goal::AtMost(1024.0)),
                    );
                    rows.push(
                        Row::new("footprint: threads", get("threads_after"), "threads")
                            .baseline(get("threads_before"), "threads before connecting")
                            .note("1 I/O thread + handler pool (default 2)"),
                    );
                }
                Ok(o) => rows.push(Row::not_measured(
                    "footprint: RSS added",
                    format!(
                        "footprint example failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                )),
                Err(e) => rows.push(Row::not_measured("footprint: RSS added", e.to_string())),
            }
        }
        Err(e) => rows.push(Row::not_measured("footprint: RSS added", e)),
    }
    let size = build_example("publish").and_then(|bin| stripped_size(&bin, &s.out_dir));
    match size {
        Ok(bytes) => {
            let mut row = Row::new(
                "footprint: stripped release `publish` example",
                bytes as f64 / 1024.0,
                "KiB",
            )
            .target("≤ 1536 KiB", Goal::AtMost(1536.0));
            match hello_world_size(&s.out_dir) {
                Ok(h) => row = row.baseline(h as f64 / 1024.0, "stripped hello world, KiB"),
                Err(e) => row = row.note(format!("no hello-world baseline: {e}")),
            }
            rows.push(row);
        }
        Err(e) => rows.push(Row::not_measured("footprint: stripped `publish`", e)),
    }
}

// ---------------------------------------------------------------------------------------
// 6. The official client, side by side
// ---------------------------------------------------------------------------------------

fn python_venv(s: &Settings) -> Result<PathBuf, String> {
    let venv = s.out_dir.join("venv");
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import awsiot.greengrasscoreipc.clientv2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && ok(&python) {
        return Ok(python);
    }
    eprintln!("installing awsiotsdk into {} ...", venv.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !status.success() {
        return Err("python3 -m venv failed".into());
    }
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "awsiotsdk"])
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !out.status.success() || !ok(&python) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "pip install awsiotsdk failed: {}",
            err.lines().last().unwrap_or("").trim()
        ));
    }
    Ok(python)
}

struct PyProcess {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stdin: std::process::ChildStdin,
}

impl PyProcess {
    /// The next line starting with `word`, with that word removed.
    fn expect(&mut self, word: &str) -> Result<Vec<String>, String> {
        for line in self.lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            let mut parts = line.split_whitespace().map(str::to_owned);
            match parts.next() {
                Some(w) if w == word => return Ok(parts.collect()),
                Some(w) if w == "error" => return Err(line),
                _ => eprintln!("official client: {line}"),
            }
        }
        Err(format!("the official client exited before `{word}`"))
    }
    fn send(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
        let _ = self.stdin.flush();
    }
}

fn bench_official(s: &Settings, rows: &mut Vec<Row>, rtt: Option<&RttFigures>) {
    let emu = Emulator::start().expect("emulator");
    let rtt_n = s.n(5_000, 500);
    let events = s.n(100_000, 5_000);

    // ggipc against this same emulator, same counts.
    let ours_rtt = match rtt {
        Some(r) => (r.emulator_p50, r.emulator_p99),
        None => {
            let c = emu.connect().expect("connect");
            let l = client_round_trips(&c, rtt_n);
            (percentile(&l, 0.5), percentile(&l, 0.99))
        }
    };
    let ours_ev: Vec<Delivery> = [1usize, 4]
        .iter()
        .map(|&subs| emulator_events(&emu, subs, events))
        .collect();

    let names = [
        "official client: round trip p50, emulator",
        "official client: round trip p99, emulator",
        "official client: events, 1 subscription, emulator",
        "official client: events, 4 subscriptions, emulator",
    ];
    let not_measured = |rows: &mut Vec<Row>, why: String| {
        for n in names {
            rows.push(Row::not_measured(n, why.clone()));
        }
    };
    if !s.python {
        return not_measured(rows, "GGIPC_BENCH_NO_PYTHON is set".into());
    }
    let python = match python_venv(s) {
        Ok(p) => p,
        Err(e) => return not_measured(rows, e),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/official_client.py");
    let child = Command::new(&python)
        .arg(&script)
        .env(ggipc::SOCKET_PATH_ENV, emu.socket_path())
        .env(ggipc::AUTH_TOKEN_ENV, emu.auth_token())
        .env("BENCH_TOPIC", TOPIC)
        .env("BENCH_PAYLOAD", PAYLOAD.to_string())
        .env("BENCH_RTT_N", rtt_n.to_string())
        .env("BENCH_EVENTS", events.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return not_measured(rows, format!("cannot run {}: {e}", script.display())),
    };
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        return not_measured(rows, "no pipes to the official client".into());
    };
    let mut py = PyProcess {
        child,
        lines: BufReader::new(stdout).lines(),
        stdin,
    };
    let result = (|| -> Result<(), String> {
        let r = py.expect("rtt")?;
        let p50: f64 = r.first().and_then(|v| v.parse().ok()).ok_or("bad rtt")?;
        let p99: f64 = r.get(1).and_then(|v| v.parse().ok()).ok_or("bad rtt")?;
        rows.push(
            Row::new(names[0], ours_rtt.0, "µs")
                .baseline(p50, "official client p50, µs")
                .note("value is ggipc against the same emulator; ratio = ggipc / official"),
        );
        rows.push(Row::new(names[1], ours_rtt.1, "µs").baseline(p99, "official client p99, µs"));
        let message = PublishMessage::binary(vec![0x5a; PAYLOAD]);
        for (i, subs) in [1usize, 4].into_iter().enumerate() {
            py.send(&format!("subscribe {subs}"));
            py.expect("ready")?;
            let topics: Vec<String> = (0..subs).map(|i| format!("{TOPIC}/{i}")).collect();
            let t = Instant::now();
            for k in 0..events {
                emu.publish("bench.Publisher", &topics[k % subs], &message);
            }
            let r = py.expect("done")?;
            let elapsed = t.elapsed().as_secs_f64();
            let got: f64 = r.first().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let theirs = got / elapsed;
            let ours = &ours_ev[i];
            let mut note = format!(
                "{events} events; ggipc delivered {} (dropped {}), official {}",
                ours.delivered, ours.dropped, got
            );
            if r.get(1).map(String::as_str) == Some("timeout") {
                note.push_str(" (official client timed out)");
            }
            rows.push(
                Row::new(names[2 + i], ours.rate, "events/s")
                    .baseline(theirs, "official client events/s")
                    .note(note),
            );
        }
        py.send("quit");
        Ok(())
    })();
    if let Err(e) = result {
        let measured: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !measured.contains(n))
            .collect();
        for n in missing {
            rows.push(Row::not_measured(n, format!("official client: {e}")));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = py.child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = py.child.kill();
    let _ = py.child.wait();
}

// ---------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no such flag:
    // then there is nothing to assert, so do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let s = Settings::from_env();
    let _ = std::fs::create_dir_all(&s.out_dir);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut rtt = None;
    if s.wants("codec") {
        eprintln!("codec ...");
        bench_codec(&s, &mut rows);
    }
    if s.wants("rtt") {
        eprintln!("round trip ...");
        rtt = Some(bench_round_trip(&s, &mut rows));
    }
    if s.wants("pipelined") {
        eprintln!("pipelined throughput ...");
        bench_pipelined(&s, &mut rows);
    }
    if s.wants("events") {
        eprintln!("event delivery ...");
        bench_events(&s, &mut rows);
    }
    if s.wants("footprint") {
        eprintln!("footprint ...");
        bench_footprint(&s, &mut rows);
    }
    if s.wants("official") {
        eprintln!("official client ...");
        bench_official(&s, &mut rows, rtt.as_ref());
    }
    let table = print_table(&rows);
    println!("\n{table}\n");
    println!(
        "({} run in {:.0} s; summary in {})",
        if s.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        s.out_dir.join("summary.json").display()
    );
    let summary = serde_json::Value::Array(rows.iter().map(Row::json).collect());
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(s.out_dir.join("summary.json"), text) {
        eprintln!("cannot write summary.json: {e}");
    }
    let _ = std::fs::write(s.out_dir.join("table.md"), table);
}

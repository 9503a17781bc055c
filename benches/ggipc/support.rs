//! What every group shares: settings from the environment, the result rows and their
//! table, percentiles, interleaving, the pseudo-random helper, the protocol fixtures
//! (request, reply and event frames) and the helper scripts' locations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ggipc::codec::Limits;
use ggipc::model::{
    BinaryMessage, MessageContext, PublishToTopicRequest, PublishToTopicResponse, Shape,
    SubscriptionResponseMessage,
};
use ggipc::rpc::{MessageType, RpcMessage, FLAG_TERMINATE_STREAM};
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/// The groups, in run order.
pub const GROUPS: [&str; 6] = ["codec", "rtt", "pipelined", "events", "footprint", "side"];

pub struct Settings {
    /// `GGIPC_BENCH_QUICK`: every scenario shortened (a smoke run).
    pub quick: bool,
    /// Unless `GGIPC_BENCH_NO_PYTHON`: the official Python client takes part.
    pub python: bool,
    /// `GGIPC_BENCH_ONLY=codec,rtt`: only these groups.
    pub only: Option<Vec<String>>,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// `target/ggipc-bench`: summary, table, venv, peers, logs.
    pub out_dir: PathBuf,
}

impl Settings {
    pub fn from_env() -> Settings {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("target"));
        Settings {
            quick: flag("GGIPC_BENCH_QUICK"),
            python: !flag("GGIPC_BENCH_NO_PYTHON"),
            only: std::env::var("GGIPC_BENCH_ONLY").ok().map(|v| {
                v.split(',')
                    .map(|s| match s.trim() {
                        // The side-by-side group replaced the "official" group.
                        "official" => "side".to_owned(),
                        other => other.to_owned(),
                    })
                    .collect()
            }),
            out_dir: target_dir.join("ggipc-bench"),
            target_dir,
        }
    }
    /// `full` normally, `full / 20` (at least `min`) in quick mode.
    pub fn n(&self, full: usize, min: usize) -> usize {
        if self.quick {
            (full / 20).max(min)
        } else {
            full
        }
    }
    /// `full` seconds normally, a fifth in quick mode.
    pub fn secs(&self, full: f64) -> Duration {
        Duration::from_secs_f64(if self.quick { full / 5.0 } else { full })
    }
    pub fn wants(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .map_or(true, |o| o.iter().any(|g| g == group))
    }
    /// Where `cargo build --release` puts binaries.
    pub fn release_dir(&self) -> PathBuf {
        self.target_dir.join("release")
    }
}

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `benches/tools/prepare.sh PART` (builds a release binary, a peer crate or the
/// Python venv; a no-op when up to date). On failure, the reason (its last stderr line).
pub fn prepare(part: &str) -> Result<(), String> {
    let script = manifest_dir().join("benches/tools/prepare.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(part)
        .current_dir(manifest_dir())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(());
    }
    let reason = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("prepare.sh:"))
        .unwrap_or("no output")
        .trim()
        .to_owned();
    Err(format!("prepare.sh {part} failed: {reason}"))
}

// ---------------------------------------------------------------------------------------
// Rows and the table
// ---------------------------------------------------------------------------------------

/// Whether a bigger or a smaller value is better, for the "met" column.
#[derive(Clone, Copy)]
pub enum Goal {
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

/// One figure with the baseline measured beside it in the same run.
pub struct Row {
    pub scenario: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub baseline: Option<f64>,
    pub baseline_what: String,
    pub target: String,
    pub goal: Goal,
    pub note: String,
}

impl Row {
    pub fn new(scenario: impl Into<String>, value: f64, unit: &'static str) -> Row {
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
    pub fn not_measured(scenario: impl Into<String>, why: impl Into<String>) -> Row {
        Row {
            value: None,
            note: format!("not measured: {}", why.into()),
            ..Row::new(scenario, 0.0, "")
        }
    }
    pub fn baseline(mut self, value: f64, what: impl Into<String>) -> Row {
        self.baseline = Some(value);
        self.baseline_what = what.into();
        self
    }
    pub fn target(mut self, text: impl Into<String>, goal: Goal) -> Row {
        self.target = text.into();
        self.goal = goal;
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
    pub fn ratio(&self) -> Option<f64> {
        match (self.value, self.baseline) {
            (Some(v), Some(b)) if b != 0.0 => Some(v / b),
            _ => None,
        }
    }
    pub fn met(&self) -> Option<bool> {
        let v = self.value?;
        match self.goal {
            Goal::AtLeast(x) => Some(v >= x),
            Goal::AtMost(x) => Some(v <= x),
            Goal::RatioAtLeast(x) => Some(self.ratio()? >= x),
            Goal::RatioAtMost(x) => Some(self.ratio()? <= x),
            Goal::None => None,
        }
    }
    pub fn json(&self) -> serde_json::Value {
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

pub fn fmt_num(v: f64) -> String {
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

/// A figure for a table cell: thousands as `k` from 10,000 up, else as [`fmt_num`].
pub fn fmt_short(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        fmt_num(v)
    }
}

pub fn yes_no(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The baseline table (Markdown) followed by the rows' notes.
pub fn rows_table(rows: &[Row]) -> String {
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
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario,
            value,
            baseline,
            ratio,
            if r.target.is_empty() { "-" } else { &r.target },
            yes_no(r.met())
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
// Statistics, timing and interleaving
// ---------------------------------------------------------------------------------------

/// The `p` quantile (0..=1) of sorted nanoseconds, in µs.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The median of some figures (the lower middle one for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

/// Runs `step` in batches of 32 until `budget` has passed: (iterations, elapsed).
pub fn time_loop(budget: Duration, mut step: impl FnMut()) -> (u64, Duration) {
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

/// Runs the contenders in alternating blocks (so that they share whatever else the
/// machine is doing), `n` timed operations each after a warm-up; sorted latencies in ns.
pub fn interleaved_latencies(n: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Vec<u64>> {
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

/// Best of `reps` runs of each contender, alternating: `contenders[i]()` returns a rate.
pub fn best_of_interleaved(reps: usize, contenders: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
    let mut best = vec![0.0f64; contenders.len()];
    for _ in 0..reps {
        for (c, b) in contenders.iter_mut().zip(best.iter_mut()) {
            *b = b.max(c());
        }
    }
    best
}

/// `threads` threads, started together, each calling the operation `make` built for it
/// in a loop for `d` (an operation that returns `false` ends its thread early): total
/// operations per second.
pub fn looping_threads<F>(threads: usize, d: Duration, make: impl Fn() -> F) -> f64
where
    F: FnMut() -> bool + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, stop, mut op) = (barrier.clone(), stop.clone(), make());
            thread::spawn(move || {
                barrier.wait();
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) && op() {
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

// ---------------------------------------------------------------------------------------
// Pseudo-random numbers
// ---------------------------------------------------------------------------------------

/// splitmix64: the bench's one source of pseudo-random numbers (no `rand` dependency).
/// Seeded explicitly, so an order printed with its seed can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// A seed from the standard library's per-process random hasher keys and the clock.
    pub fn seed_from_entropy() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0; the modulo bias is negligible for small `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Protocol fixtures
// ---------------------------------------------------------------------------------------

pub const TOPIC: &str = "bench/topic";
/// Every publish carries a binary message of this many bytes.
pub const PAYLOAD: usize = 128;
/// The environment variables a Greengrass component connects with.
pub const SOCKET_PATH_ENV: &str = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT";
pub const AUTH_TOKEN_ENV: &str = "SVCUID";

pub fn publish_request(topic: &str) -> PublishToTopicRequest {
    PublishToTopicRequest::binary(topic, vec![0x5a; PAYLOAD])
}

pub fn encode(m: &RpcMessage) -> Bytes {
    m.to_frame()
        .to_bytes(&Limits::default())
        .expect("encodable")
}

/// The request frame `publish_to_topic` writes and the reply the nucleus sends back.
pub fn round_trip_frames() -> (Bytes, Bytes) {
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

/// An empty (`{}`) response of `model_type` on `stream_id`.
pub fn response_message(stream_id: i32, model_type: &str, flags: i32) -> RpcMessage {
    RpcMessage::json(
        MessageType::ApplicationMessage,
        flags,
        stream_id,
        Some(model_type.to_owned()),
        &b"{}"[..],
    )
}

/// The event frame a 128-byte binary message published on `topic` becomes on `stream_id`.
pub fn event_frame(stream_id: i32, topic: &str) -> Bytes {
    let event = SubscriptionResponseMessage::BinaryMessage(
        BinaryMessage::new()
            .with_message(vec![0x5a; PAYLOAD])
            .with_context(MessageContext::new().with_topic(topic)),
    );
    let payload = serde_json::to_vec(&event).expect("json");
    encode(&RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        stream_id,
        Some(SubscriptionResponseMessage::MODEL_TYPE),
        payload,
    ))
}

/// A fresh socket path under the temp dir, unique per process and tag.
pub fn socket_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ggipc-bench-{}-{tag}.sock", std::process::id()))
}

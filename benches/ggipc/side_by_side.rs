//! Group `side`: one honest side-by-side. ggipc, greengrass-ipc-rust (the published async
//! crate, on tokio), the official C component SDK (built from its crates.io package) and
//! the official Python client (awsiotsdk's V2 client) each hold one connection to the
//! same external `ggipc-emulator` process and run the same three measures in
//! interleaved rounds: every round runs each contender once, in an order shuffled per
//! round, and the figure is the median over the rounds. Default client settings
//! everywhere (queues included); payloads are 128-byte binary messages.
//!
//! ggipc runs inside the bench process (idle while the others run); the others are
//! child processes speaking `benches/peers/protocol.rs`.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::Client;
use serde_json::json;

use crate::peers::{EmulatorProcess, PeerProcess};
use crate::pipelined::{client_throughput, in_flight_throughput};
use crate::support::{fmt_short, median, prepare, publish_request, yes_no, Rng, Settings, PAYLOAD};

/// How long one contender may take for one `events` run (the peers give up after 60 s).
const EVENTS_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a peer has no figure for the one-thread calls-in-flight row.
const NO_IN_FLIGHT: &str = "no such command in the bench peer";

/// One `events` run: `delivered` of `total` events seen by the handler, at `rate`.
#[derive(Clone, Copy)]
struct Events {
    rate: f64,
    delivered: u64,
    dropped: u64,
    total: u64,
}

trait Contender {
    /// Sequential publish round trips: (p50, p99) in µs.
    fn rtt(&mut self, n: usize, topic: &str) -> Result<(f64, f64), String>;
    /// `threads` threads (or tasks) publishing for `secs`: publishes/s.
    fn pipelined(&mut self, threads: usize, secs: f64, topic: &str) -> Result<f64, String>;
    /// One thread keeping `window` publishes in flight for `secs`: publishes/s. Only
    /// ggipc has it here (the peers' line protocol has no such command).
    fn in_flight(&mut self, _window: usize, _secs: f64, _topic: &str) -> Result<f64, String> {
        Err(NO_IN_FLIGHT.into())
    }
    /// One thread publishing in sequence for `secs`, each publish waiting for its reply:
    /// publishes/s (the calls in flight's reference; ggipc only, as that measure).
    fn sequential(&mut self, _secs: f64, _topic: &str) -> Result<f64, String> {
        Err(NO_IN_FLIGHT.into())
    }
    /// Subscribe to `topic`, `publishers` publishers publish `total` messages in all to it.
    fn events(&mut self, publishers: usize, total: usize, topic: &str) -> Result<Events, String>;
}

// ---------------------------------------------------------------------------------------
// ggipc, in this process
// ---------------------------------------------------------------------------------------

struct Ggipc {
    client: Client,
}

impl Contender for Ggipc {
    fn rtt(&mut self, n: usize, topic: &str) -> Result<(f64, f64), String> {
        let request = publish_request(topic);
        let mut lat = Vec::with_capacity(n);
        for i in 0..n + n / 10 {
            let t = Instant::now();
            self.client
                .publish_to_topic(request.clone())
                .map_err(|e| e.to_string())?;
            if i >= n / 10 {
                lat.push(t.elapsed().as_nanos() as u64);
            }
        }
        lat.sort_unstable();
        Ok((
            crate::support::percentile(&lat, 0.5),
            crate::support::percentile(&lat, 0.99),
        ))
    }

    fn pipelined(&mut self, threads: usize, secs: f64, topic: &str) -> Result<f64, String> {
        Ok(client_throughput(
            &self.client,
            threads,
            topic,
            Duration::from_secs_f64(secs),
        ))
    }

    fn sequential(&mut self, secs: f64, topic: &str) -> Result<f64, String> {
        Ok(client_throughput(
            &self.client,
            1,
            topic,
            Duration::from_secs_f64(secs),
        ))
    }

    fn in_flight(&mut self, window: usize, secs: f64, topic: &str) -> Result<f64, String> {
        in_flight_throughput(&self.client, window, topic, Duration::from_secs_f64(secs))
            .map_err(|e| e.to_string())
    }

    fn events(&mut self, publishers: usize, total: usize, topic: &str) -> Result<Events, String> {
        let per = total / publishers;
        let total = (per * publishers) as u64;
        let seen = Arc::new(AtomicU64::new(0));
        let (done, done_rx) = bounded(1);
        let handler = {
            let seen = seen.clone();
            move |e: SubscriptionResponseMessage| {
                std::hint::black_box(&e);
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == total {
                    let _ = done.try_send(Instant::now());
                }
            }
        };
        // Default settings: the subscription's queue is the default one.
        let subscription = self
            .client
            .subscribe_to_topic(SubscribeToTopicRequest::new(topic), handler)
            .map_err(|e| e.to_string())?;
        let client = &self.client;
        let start = Instant::now();
        thread::scope(|s| {
            let handles: Vec<_> = (0..publishers)
                .map(|_| {
                    let request = publish_request(topic);
                    s.spawn(move || {
                        for _ in 0..per {
                            client
                                .publish_to_topic(request.clone())
                                .map_err(|e| e.to_string())?;
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("publisher panicked".into()))
            })
        })?;
        // Until every event was handled or dropped (the default queue may overflow).
        let deadline = start + EVENTS_TIMEOUT;
        let end = loop {
            match done_rx.recv_timeout(Duration::from_millis(2)) {
                Ok(t) => break t,
                Err(_) => {
                    let dropped = subscription.stats().dropped;
                    if seen.load(Ordering::Relaxed) + dropped >= total || Instant::now() > deadline
                    {
                        break Instant::now();
                    }
                }
            }
        };
        let delivered = seen.load(Ordering::Relaxed);
        let dropped = subscription.stats().dropped;
        drop(subscription);
        Ok(Events {
            rate: delivered as f64 / (end - start).as_secs_f64(),
            delivered,
            dropped,
            total,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The others, as child processes
// ---------------------------------------------------------------------------------------

impl Contender for PeerProcess {
    fn rtt(&mut self, n: usize, topic: &str) -> Result<(f64, f64), String> {
        let w = self.ask(&format!("rtt {n} {topic}"), Duration::from_secs(120))?;
        Ok((num(&w, 0)?, num(&w, 1)?))
    }

    fn pipelined(&mut self, threads: usize, secs: f64, topic: &str) -> Result<f64, String> {
        let w = self.ask(
            &format!("pipelined {threads} {secs} {topic}"),
            Duration::from_secs_f64(secs) + Duration::from_secs(60),
        )?;
        Ok(num(&w, 0)? / num(&w, 1)?)
    }

    fn events(&mut self, publishers: usize, total: usize, topic: &str) -> Result<Events, String> {
        let w = self.ask(
            &format!("events {publishers} {total} {topic}"),
            EVENTS_TIMEOUT + Duration::from_secs(30),
        )?;
        let (delivered, secs) = (num(&w, 0)?, num(&w, 1)?);
        Ok(Events {
            rate: delivered / secs,
            delivered: delivered as u64,
            dropped: num(&w, 2).unwrap_or(0.0) as u64,
            total: ((total / publishers) * publishers) as u64,
        })
    }
}

fn num(words: &[String], i: usize) -> Result<f64, String> {
    words
        .get(i)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("malformed answer {words:?}"))
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

struct Entrant {
    name: String,
    contender: Result<Box<dyn Contender>, String>,
    rtt: Vec<(f64, f64)>,
    pipelined: Vec<f64>,
    in_flight: Vec<f64>,
    sequential: Vec<f64>,
    events: Vec<Events>,
    errors: Vec<String>,
}

impl Entrant {
    fn new(name: impl Into<String>, contender: Result<Box<dyn Contender>, String>) -> Entrant {
        Entrant {
            name: name.into(),
            contender,
            rtt: Vec::new(),
            pipelined: Vec::new(),
            in_flight: Vec::new(),
            sequential: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
        }
    }
    /// Runs one measure on this contender, keeping the error (not measured) if it fails.
    fn run<T>(&mut self, f: impl FnOnce(&mut dyn Contender) -> Result<T, String>) -> Option<T> {
        let c = self.contender.as_mut().ok()?;
        match f(c.as_mut()) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("  {}: {e}", self.name);
                self.errors.push(e);
                None
            }
        }
    }
    /// Why there is no figure, if there is none.
    fn why_not(&self) -> String {
        match &self.contender {
            Err(e) => e.clone(),
            Ok(_) => self
                .errors
                .first()
                .cloned()
                .unwrap_or_else(|| "no result".into()),
        }
    }
}

fn peer(
    s: &Settings,
    emu: &EmulatorProcess,
    part: &str,
    bin: &str,
) -> Result<Box<dyn Contender>, String> {
    prepare(part)?;
    let path = s.out_dir.join("peers/release").join(bin);
    let log = s.out_dir.join(format!("{part}.log"));
    Ok(Box::new(PeerProcess::spawn(Command::new(path), emu, &log)?))
}

fn python(s: &Settings, emu: &EmulatorProcess) -> Result<(Box<dyn Contender>, String), String> {
    if !s.python {
        return Err("GGIPC_BENCH_NO_PYTHON is set".into());
    }
    prepare("python")?;
    let mut command = Command::new(s.out_dir.join("venv/bin/python"));
    command.arg(crate::support::manifest_dir().join("benches/official_client.py"));
    let p = PeerProcess::spawn(command, emu, &s.out_dir.join("python.log"))?;
    let version = p.ready_words.join(" ");
    Ok((Box::new(p), version))
}

/// One measure's row: every contender's median figure and ggipc's ratio to it.
struct Measure {
    name: String,
    unit: &'static str,
    lower_is_better: bool,
    /// Per contender: the median, or why not measured.
    figures: Vec<Result<f64, String>>,
    /// Per contender: the rounds' figures.
    rounds: Vec<Vec<f64>>,
}

impl Measure {
    fn new(
        name: impl Into<String>,
        unit: &'static str,
        lower_is_better: bool,
        entrants: &[Entrant],
        pick: impl Fn(&Entrant) -> Vec<f64>,
    ) -> Measure {
        let rounds: Vec<Vec<f64>> = entrants.iter().map(&pick).collect();
        let figures = entrants
            .iter()
            .zip(&rounds)
            .map(|(e, r)| median(r).ok_or_else(|| e.why_not()))
            .collect();
        Measure {
            name: name.into(),
            unit,
            lower_is_better,
            figures,
            rounds,
        }
    }
    /// ggipc's figure ÷ contender `i`'s.
    fn ratio(&self, i: usize) -> Option<f64> {
        match (&self.figures[0], &self.figures[i]) {
            (Ok(ours), Ok(theirs)) if *theirs != 0.0 => Some(ours / theirs),
            _ => None,
        }
    }
}

pub fn run(s: &Settings) -> (String, serde_json::Value) {
    // Many short rounds rather than a few long ones: on a shared machine the load
    // changes by the second, and the median of 5 shrugs off two disturbed rounds.
    let rounds = if s.quick { 1 } else { 5 };
    let rtt_n = s.n(3_000, 500);
    let secs = s.secs(0.6).as_secs_f64();
    let threads = 8;
    let publishers = 4;
    let events_total = s.n(20_000, 2_000) / publishers * publishers;

    let emu = match prepare("emulator").and_then(|()| EmulatorProcess::start(s)) {
        Ok(e) => e,
        Err(e) => {
            let text = format!("Side-by-side not measured: {e}");
            return (text.clone(), json!({ "error": text }));
        }
    };
    eprintln!("  ggipc-emulator running as pid {}", emu.pid());

    let mut builder = Client::builder()
        .socket_path(&emu.socket)
        .auth_token(emu.token.clone());
    if let Some(spin) = reply_spin() {
        builder = builder.reply_spin(spin);
    }
    let ggipc: Result<Box<dyn Contender>, String> = builder
        .connect()
        .map(|client| Box::new(Ggipc { client }) as Box<dyn Contender>)
        .map_err(|e| format!("connect: {e}"));
    let (py, py_version) = match python(s, &emu) {
        Ok((c, v)) => (Ok(c), v),
        Err(e) => (Err(e), String::new()),
    };
    let py_name = if py_version.is_empty() {
        "official Python V2 (awsiotsdk)".to_owned()
    } else {
        format!("official Python V2 ({py_version})")
    };
    let mut entrants = vec![
        Entrant::new("ggipc", ggipc),
        Entrant::new(
            "greengrass-ipc-rust 0.2.0 (tokio)",
            peer(s, &emu, "async-peer", "ggipc-bench-peer-async"),
        ),
        Entrant::new(
            "official C SDK (aws-greengrass-component-sdk 1.1.0)",
            peer(s, &emu, "c-sdk", "ggipc-bench-peer-c-sdk"),
        ),
        Entrant::new(py_name, py),
    ];

    let seed = Rng::seed_from_entropy();
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..entrants.len()).collect();
    let window = 64;
    for measure in ["rtt", "pipelined", "in_flight", "events"] {
        eprintln!("  {measure}: {rounds} interleaved round(s)");
        for round in 0..rounds {
            rng.shuffle(&mut order);
            for &i in &order {
                let topic = format!("bench/{measure}/{i}/{round}");
                let e = &mut entrants[i];
                match measure {
                    "rtt" => {
                        if let Some(v) = e.run(|c| c.rtt(rtt_n, &topic)) {
                            e.rtt.push(v);
                        }
                    }
                    "pipelined" => {
                        if let Some(v) = e.run(|c| c.pipelined(threads, secs, &topic)) {
                            e.pipelined.push(v);
                        }
                    }
                    "in_flight" => {
                        if i == 0 {
                            if let Some(v) = e.run(|c| c.in_flight(window, secs, &topic)) {
                                e.in_flight.push(v);
                            }
                            if let Some(v) = e.run(|c| c.sequential(secs, &topic)) {
                                e.sequential.push(v);
                            }
                        }
                    }
                    _ => {
                        if let Some(v) = e.run(|c| c.events(publishers, events_total, &topic)) {
                            e.events.push(v);
                        }
                    }
                }
            }
        }
    }
    // Close the contenders (and their connections) before the emulator.
    // (A contender that never started keeps its reason for the table.)
    for e in &mut entrants {
        if e.contender.is_ok() {
            e.contender = Err("closed".into());
        }
    }
    drop(emu);

    let mut in_flight = Measure::new(
        format!("one thread, {window} calls in flight (ggipc: `Client::start`)"),
        "publishes/s",
        false,
        &entrants,
        |e| e.in_flight.clone(),
    );
    let mut sequential = Measure::new(
        "one thread, sequential publishes (ggipc: the reference of the calls in flight)",
        "publishes/s",
        false,
        &entrants,
        |e| e.sequential.clone(),
    );
    for f in (in_flight.figures.iter_mut().skip(1)).chain(sequential.figures.iter_mut().skip(1)) {
        *f = Err(NO_IN_FLIGHT.into());
    }
    let measures = vec![
        Measure::new(
            "sequential publish round trip p50",
            "µs",
            true,
            &entrants,
            |e| e.rtt.iter().map(|r| r.0).collect(),
        ),
        Measure::new(
            "sequential publish round trip p99",
            "µs",
            true,
            &entrants,
            |e| e.rtt.iter().map(|r| r.1).collect(),
        ),
        Measure::new(
            format!("{threads} threads ({threads} tasks) pipelined publishes"),
            "publishes/s",
            false,
            &entrants,
            |e| e.pipelined.clone(),
        ),
        in_flight,
        sequential,
        Measure::new(
            format!("publish + subscribe, {publishers} publishers, {events_total} events"),
            "events/s",
            false,
            &entrants,
            |e| e.events.iter().map(|v| v.rate).collect(),
        ),
    ];
    let text = table(&entrants, &measures, rounds, seed, rtt_n, secs);
    let summary = summary_json(&entrants, &measures, rounds, seed);
    (text, summary)
}

fn cell(figure: &Result<f64, String>, unit: &str) -> String {
    match figure {
        Ok(v) => format!("{} {unit}", fmt_short(*v)),
        Err(e) => format!("not measured: {e}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn table(
    entrants: &[Entrant],
    measures: &[Measure],
    rounds: usize,
    seed: u64,
    rtt_n: usize,
    secs: f64,
) -> String {
    let mut head = vec!["measure".to_owned(), entrants[0].name.clone()];
    for e in &entrants[1..] {
        head.push(e.name.clone());
        head.push("ggipc ÷ it".into());
    }
    let mut lines = vec![
        format!("| {} |", head.join(" | ")),
        format!("|{}", "---|".repeat(head.len())),
    ];
    for m in measures {
        let better = if m.lower_is_better {
            "lower is better"
        } else {
            "higher is better"
        };
        let mut cells = vec![
            format!("{} ({better})", m.name),
            cell(&m.figures[0], m.unit),
        ];
        for i in 1..entrants.len() {
            cells.push(cell(&m.figures[i], m.unit));
            cells.push(m.ratio(i).map_or("-".into(), |r| format!("{r:.2}×")));
        }
        lines.push(format!("| {} |", cells.join(" | ")));
    }

    // How much the rounds disagree: read a ratio against this spread.
    lines.push(String::new());
    let mut head = vec!["spread over the rounds (min–max)".to_owned()];
    head.extend(entrants.iter().map(|e| e.name.clone()));
    lines.push(format!("| {} |", head.join(" | ")));
    lines.push(format!("|{}", "---|".repeat(head.len())));
    for m in measures {
        let mut cells = vec![m.name.clone()];
        for r in &m.rounds {
            let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            cells.push(if r.is_empty() {
                "-".into()
            } else {
                format!("{}–{}", fmt_short(lo), fmt_short(hi))
            });
        }
        lines.push(format!("| {} |", cells.join(" | ")));
    }

    // Issue 12's targets, as ratios to greengrass-ipc-rust in this run.
    let targets: [(usize, &str, bool, f64); 3] = [
        (0, "round-trip p50 ≤ 0.9× greengrass-ipc-rust", true, 0.9),
        (
            2,
            "8-thread pipelined publishes ≥ 1.0× greengrass-ipc-rust",
            false,
            1.0,
        ),
        (
            5,
            "publish + subscribe events ≥ 1.0× greengrass-ipc-rust",
            false,
            1.0,
        ),
    ];
    lines.push(String::new());
    lines.push("| target (ratio to greengrass-ipc-rust, this run) | ratio | met |".into());
    lines.push("|---|---|---|".into());
    for (m, what, at_most, bound) in targets {
        let r = measures[m].ratio(1);
        let met = r.map(|r| if at_most { r <= bound } else { r >= bound });
        lines.push(format!(
            "| {what} | {} | {} |",
            r.map_or("-".into(), |r| format!("{r:.2}")),
            yes_no(met)
        ));
    }
    // Against greengrass-ipc-rust's 8 tasks, and against ggipc's own sequential rate.
    let ours = measures[3].figures[0].as_ref().ok().copied();
    let peer_tasks = measures[2].figures[1].as_ref().ok().copied();
    let sequential = measures[4].figures[0].as_ref().ok().copied();
    for (what, theirs, bound) in [
        (
            "one thread with calls in flight ≥ 2× greengrass-ipc-rust's 8 tasks",
            peer_tasks,
            2.0,
        ),
        (
            "one thread with calls in flight ≥ 3× ggipc's sequential publishes",
            sequential,
            3.0,
        ),
    ] {
        let r = ours.zip(theirs).map(|(a, b)| a / b);
        lines.push(format!(
            "| {what} | {} | {} |",
            r.map_or("-".into(), |r| format!("{r:.2}")),
            yes_no(r.map(|r| r >= bound))
        ));
    }

    lines.push(String::new());
    lines.push("Setup of this run:".into());
    let mut emulator = match std::env::var("GGIPC_BENCH_EMULATOR") {
        Ok(path) => format!("`{path}` (GGIPC_BENCH_EMULATOR)"),
        Err(_) => "`ggipc-emulator`".into(),
    };
    let flags = crate::peers::emulator_args();
    if !flags.is_empty() {
        emulator = format!(
            "{emulator} **`{}`** (GGIPC_BENCH_EMULATOR_ARGS: not the defaults)",
            flags.join(" ")
        );
    }
    lines.push(format!(
        "- one {emulator} process (release build, `GGIPC_LOG=warn`), one connection \
         per contender; {PAYLOAD}-byte binary messages; {rounds} interleaved round(s), \
         contender order shuffled per round (splitmix64 seed {seed:#x}); each figure is \
         the median over the rounds"
    ));
    lines.push(format!(
        "- round trip: {rtt_n} sequential publishes after {} warm-up ones; pipelined: \
         {secs:.1} s per run; events: the contender subscribes, then its publishers \
         publish to that topic; the rate is events seen by the handler from the first \
         publish to the last event; calls in flight (ggipc only): one thread keeps a \
         sliding window of 64 publishes in flight with `Client::start` for {secs:.1} s, \
         then publishes in sequence for as long (its reference)",
        rtt_n / 10
    ));
    lines.push(
        "- default settings everywhere: ggipc's default bounded per-subscription queue \
         (overflow dropped and counted), greengrass-ipc-rust's unbounded channel and \
         default tokio runtime (one worker per core), the C SDK's callbacks on its receive \
         thread, the Python client's default executor"
            .into(),
    );
    if let Some(spin) = reply_spin() {
        lines.push(format!(
            "- **ggipc's `reply_spin` {} µs** (GGIPC_BENCH_REPLY_SPIN_US: not the default, {} µs)",
            spin.as_micros(),
            ggipc::DEFAULT_REPLY_SPIN.as_micros()
        ));
    }
    for e in entrants {
        let dropped: u64 = e.events.iter().map(|v| v.dropped).sum();
        let short: Vec<String> = e
            .events
            .iter()
            .filter(|v| v.delivered + v.dropped < v.total)
            .map(|v| format!("{} of {}", v.delivered, v.total))
            .collect();
        if dropped > 0 {
            lines.push(format!(
                "- {}: {dropped} events dropped by the queue over the event rounds",
                e.name
            ));
        }
        if !short.is_empty() {
            lines.push(format!(
                "- {}: events missing after the time limit: {}",
                e.name,
                short.join(", ")
            ));
        }
    }
    lines.join("\n")
}

fn summary_json(
    entrants: &[Entrant],
    measures: &[Measure],
    rounds: usize,
    seed: u64,
) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = measures
        .iter()
        .map(|m| {
            let contenders: Vec<serde_json::Value> = entrants
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    json!({
                        "contender": e.name,
                        "median": m.figures[i].as_ref().ok(),
                        "not_measured": m.figures[i].as_ref().err(),
                        "rounds": m.rounds[i],
                        "ggipc_over_it": if i == 0 { None } else { m.ratio(i) },
                    })
                })
                .collect();
            json!({
                "measure": m.name,
                "unit": m.unit,
                "better": if m.lower_is_better { "lower" } else { "higher" },
                "contenders": contenders,
            })
        })
        .collect();
    json!({ "rounds": rounds, "seed": seed, "measures": rows })
}

/// `GGIPC_BENCH_REPLY_SPIN_US`: the ggipc contender's `reply_spin`, in microseconds, when
/// set (labelled in the setup line); otherwise the default.
fn reply_spin() -> Option<Duration> {
    let us = std::env::var("GGIPC_BENCH_REPLY_SPIN_US").ok()?;
    match us.trim().parse() {
        Ok(us) => Some(Duration::from_micros(us)),
        Err(_) => panic!("GGIPC_BENCH_REPLY_SPIN_US={us}: a number of microseconds"),
    }
}

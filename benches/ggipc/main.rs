//! `cargo bench --bench ggipc`: the benchmark suite. Two kinds of figures:
//!
//! - **Against the floor** (groups codec, rtt, pipelined, events, footprint): each figure
//!   beside a baseline measured in the same run (memcpy, raw Unix-socket ping-pong and
//!   one-way writes, a stripped hello world), against servers inside the bench process.
//! - **Side by side** (group side): ggipc, greengrass-ipc-rust, the official C component
//!   SDK and the official Python client against one external `ggipc-emulator` process,
//!   in interleaved rounds, with every contender's figure and ggipc's ratio to it.
//!
//! A hand-rolled harness (`harness = false`) that prints both tables and writes them to
//! `target/ggipc-bench/table.md` and `summary.json`. `GGIPC_BENCH_QUICK=1` shortens every
//! scenario (smoke run); `GGIPC_BENCH_NO_PYTHON=1` leaves the Python client out;
//! `GGIPC_BENCH_ONLY=codec,rtt` runs only the named groups (codec, rtt, pipelined,
//! events, footprint, side); `GGIPC_BENCH_EMULATOR=<path>` runs the side-by-side
//! against another `ggipc-emulator` binary (to compare emulator builds), and
//! `GGIPC_BENCH_EMULATOR_ARGS="--busy-poll 50us"` with those flags (the setup line says
//! so: not the defaults); `GGIPC_BENCH_REPLY_SPIN_US=0` sets the ggipc contender's
//! `ClientBuilder::reply_spin` (also labelled). Release binaries, the peer crates under `benches/peers/`
//! and the Python venv are built by `benches/tools/prepare.sh`, which the groups that
//! need them call.
//!
//! Layout (`benches/ggipc/`): `support.rs` (settings, rows and tables, statistics, splitmix64,
//! protocol fixtures), `servers.rs` (lean responder, raw baselines),
//! `peers.rs` (the emulator process and contender processes), one file per group.

mod codec;
mod events;
mod footprint;
mod peers;
mod pipelined;
mod round_trip;
mod servers;
mod side_by_side;
mod support;

use std::time::Instant;

use support::{rows_table, Row, Settings, GROUPS};

/// A group of the "against the floor" table: appends its rows.
type Group = fn(&Settings, &mut Vec<Row>);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no such flag:
    // then there is nothing to assert, so do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let s = Settings::from_env();
    if let Some(only) = &s.only {
        for g in only {
            if !GROUPS.contains(&g.as_str()) {
                eprintln!("GGIPC_BENCH_ONLY: unknown group {g:?} (groups: {GROUPS:?})");
            }
        }
    }
    let _ = std::fs::create_dir_all(&s.out_dir);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let groups: [(&str, &str, Group); 5] = [
        ("codec", "codec", codec::run),
        ("rtt", "round trip", round_trip::run),
        ("pipelined", "pipelined throughput", pipelined::run),
        ("events", "event delivery", events::run),
        ("footprint", "footprint", footprint::run),
    ];
    for (name, what, run) in groups {
        if s.wants(name) {
            eprintln!("{what} ...");
            let t = Instant::now();
            run(&s, &mut rows);
            eprintln!("  ({:.0} s)", t.elapsed().as_secs_f64());
        }
    }
    let mut side = None;
    if s.wants("side") {
        eprintln!("side by side against the ggipc-emulator process ...");
        let t = Instant::now();
        side = Some(side_by_side::run(&s));
        eprintln!("  ({:.0} s)", t.elapsed().as_secs_f64());
    }

    let mut text = String::new();
    if !rows.is_empty() {
        text.push_str("## Against the floor\n\n");
        text.push_str(&rows_table(&rows));
        text.push_str("\n\n");
    }
    if let Some((table, _)) = &side {
        text.push_str("## Side by side\n\n");
        text.push_str(table);
        text.push('\n');
    }
    println!("\n{text}");
    println!(
        "({} run in {:.0} s; summary in {})",
        if s.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        s.out_dir.join("summary.json").display()
    );
    let summary = serde_json::json!({
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "side_by_side": side.map(|(_, json)| json),
    });
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(s.out_dir.join("summary.json"), json) {
        eprintln!("cannot write summary.json: {e}");
    }
    let _ = std::fs::write(s.out_dir.join("table.md"), text);
}

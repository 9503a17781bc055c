//! Group `footprint`: resident memory and threads a connected client adds (measured in a
//! child process, `examples/footprint.rs`), and the stripped size of the release
//! `publish` example beside a stripped hello world. The release examples are built by
//! `benches/tools/prepare.sh examples`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ggipc::emulator::Emulator;

use crate::support::{prepare, Goal, Row, Settings, AUTH_TOKEN_ENV, SOCKET_PATH_ENV};

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

fn example(s: &Settings, name: &str) -> Result<PathBuf, String> {
    let path = s.release_dir().join("examples").join(name);
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

fn rss(s: &Settings, rows: &mut Vec<Row>) -> Result<(), String> {
    let bin = example(s, "footprint")?;
    let emu = Emulator::start().map_err(|e| format!("emulator: {e}"))?;
    let o = Command::new(&bin)
        .env(SOCKET_PATH_ENV, emu.socket_path())
        .env(AUTH_TOKEN_ENV, emu.auth_token())
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "footprint example failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
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
    Ok(())
}

pub fn run(s: &Settings, rows: &mut Vec<Row>) {
    if let Err(e) = prepare("examples") {
        rows.push(Row::not_measured("footprint", e));
        return;
    }
    if let Err(e) = rss(s, rows) {
        rows.push(Row::not_measured("footprint: RSS added", e));
    }
    let size = example(s, "publish").and_then(|bin| stripped_size(&bin, &s.out_dir));
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

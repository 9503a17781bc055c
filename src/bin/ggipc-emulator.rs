//! `ggipc-emulator`: a local Greengrass nucleus that any component can be pointed at.
//!
//! Prints shell `export` lines for the socket and the first component's SVCUID (to stdout,
//! and with `--env-file PATH` atomically to that file once the socket accepts connections),
//! then serves until SIGINT or SIGTERM, logging each call to stderr. Run `--help` for flags.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ggipc::emulator::{Emulator, Flavor, DEPLOY_TOPIC};

const USAGE: &str = "\
usage: ggipc-emulator [options]

A local AWS IoT Greengrass nucleus (IPC only) for testing components.

options:
  --socket PATH          socket to listen on (default: a fresh path under the temp dir)
  --recipe FILE          load a component from its recipe (JSON or YAML); repeatable
  --svcuid TOKEN         SVCUID of the first component (default: random)
  --env-file PATH        once the socket accepts connections, write the export lines
                         to PATH (a temp file in the same folder, then renamed over
                         PATH); a stale PATH is removed at start, PATH at exit
  --secrets FILE         secrets for GetSecretValue (JSON list of {arn|name,
                         secretString|secretBinary, versionId, versionStages})
  --flavor nucleus|lite  behave like the Java nucleus (default) or nucleus lite
  --control-topic        a publish to $ggipc/emulator/deploy (JSON deployment
                         description) triggers a simulated deployment (for tests)
  --max-connections N    serve at most N connections at once (default 256); at the
                         cap the oldest one without a CONNECT yet is closed, or the
                         new one refused
  --handshake-timeout D  close a connection with no whole CONNECT within D (default 5s)
  --write-timeout D      close a connection that does not take a whole frame within D
                         (default 5s)
  --queue-events N       per-connection outbound queue: at most N events (default 1024)
  --queue-bytes N        ... and N bytes (default 4194304); events beyond are dropped,
                         counted and logged
  --busy-poll D          after serving a connection's requests, keep reading its
                         socket without blocking for D before sleeping (default 50us;
                         at most 10ms; 0: sleep at once, as a nucleus does): a request
                         that arrives within D wakes no thread, for the CPU of polling
  -v, --verbose          log at debug level (else RUST_LOG / GGIPC_LOG, default info)
  -h, --help             this help

Durations D: `50us`, `500ms`, `2s` or a number of seconds.
Without --recipe, one component with a permissive policy is created.
On start, prints `export` lines to evaluate in the component's shell; the other
components' tokens follow as `# <name>: SVCUID=<token>` comments.";

/// A tiny stderr logger.
struct Logger {
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            // One write per line: stderr is unbuffered, and `writeln!` with arguments
            // writes each piece separately (about ten system calls per logged call).
            let line = format!("ggipc-emulator {:5} {}\n", record.level(), record.args());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

fn level_from_env() -> log::LevelFilter {
    let value = std::env::var("GGIPC_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    // Accept `debug` or `ggipc=debug,other=warn`: the last level word wins.
    let word = value
        .rsplit(',')
        .find_map(|part| part.rsplit('=').next())
        .unwrap_or("info");
    word.parse().unwrap_or(log::LevelFilter::Info)
}

struct Options {
    socket: Option<String>,
    recipes: Vec<String>,
    svcuid: Option<String>,
    secrets: Option<String>,
    env_file: Option<std::path::PathBuf>,
    flavor: Flavor,
    control_topic: bool,
    verbose: bool,
    max_connections: Option<usize>,
    handshake_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    queue_events: Option<usize>,
    queue_bytes: Option<usize>,
    busy_poll: Duration,
}

/// `--busy-poll` unless given. A standalone emulator is a server for components under
/// test and for load tests of clients: a request that follows a reply within 50 µs is
/// read without a thread being woken (see `EmulatorBuilder::busy_poll`), for at most
/// 50 µs of CPU after each burst of requests on a connection, none while idle.
const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// `50us`, `500ms`, `2s`, `1.5s` or a number of seconds, more than zero.
fn parse_duration(name: &str, text: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(name, text)? {
        Duration::ZERO => Err(format!("{name}: {text:?} must be more than zero")),
        d => Ok(d),
    }
}

/// [`parse_duration`], zero included.
fn parse_duration_or_zero(name: &str, text: &str) -> Result<Duration, String> {
    let bad = || format!("{name}: {text:?} is not a duration (e.g. 500ms, 2s)");
    let (number, scale) = if let Some(us) = text.strip_suffix("us") {
        (us, 1e-6)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn parse_count(name: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}: {text:?} is not a positive number")),
    }
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut o = Options {
        socket: None,
        recipes: Vec::new(),
        svcuid: None,
        secrets: None,
        env_file: None,
        flavor: Flavor::Nucleus,
        control_topic: false,
        verbose: false,
        max_connections: None,
        handshake_timeout: None,
        write_timeout: None,
        queue_events: None,
        queue_bytes: None,
        busy_poll: DEFAULT_BUSY_POLL,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => o.socket = Some(value("--socket")?),
            "--recipe" => o.recipes.push(value("--recipe")?),
            "--svcuid" => o.svcuid = Some(value("--svcuid")?),
            "--secrets" => o.secrets = Some(value("--secrets")?),
            "--env-file" => o.env_file = Some(value("--env-file")?.into()),
            "--flavor" => {
                o.flavor = match value("--flavor")?.as_str() {
                    "nucleus" => Flavor::Nucleus,
                    "lite" => Flavor::Lite,
                    other => return Err(format!("unknown flavor {other:?} (nucleus or lite)")),
                }
            }
            "--control-topic" => o.control_topic = true,
            "--max-connections" => {
                o.max_connections = Some(parse_count(&arg, &value("--max-connections")?)?)
            }
            "--handshake-timeout" => {
                o.handshake_timeout = Some(parse_duration(&arg, &value("--handshake-timeout")?)?)
            }
            "--write-timeout" => {
                o.write_timeout = Some(parse_duration(&arg, &value("--write-timeout")?)?)
            }
            "--queue-events" => {
                o.queue_events = Some(parse_count(&arg, &value("--queue-events")?)?)
            }
            "--queue-bytes" => o.queue_bytes = Some(parse_count(&arg, &value("--queue-bytes")?)?),
            "--busy-poll" => o.busy_poll = parse_duration_or_zero(&arg, &value("--busy-poll")?)?,
            "-v" | "--verbose" => o.verbose = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(o))
}

/// Quotes a value for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:+=@,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ggipc-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if options.verbose {
        log::LevelFilter::Debug
    } else {
        level_from_env()
    };
    if log::set_logger(Box::leak(Box::new(Logger { level }))).is_ok() {
        log::set_max_level(level);
    }

    // Handled from here on, before the socket and the env file exist: a supervisor that
    // signals as soon as the env file appears (or earlier) gets a clean stop, with both
    // files removed, not the default action's abrupt end.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("ggipc-emulator: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }

    // A file left by an earlier run must not be mistaken for this one's.
    if let Some(path) = &options.env_file {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("ggipc-emulator: --env-file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }

    let mut builder = Emulator::builder()
        .flavor(options.flavor)
        .control_topic(options.control_topic)
        .busy_poll(options.busy_poll);
    if let Some(socket) = &options.socket {
        builder = builder.socket_path(socket);
    }
    if let Some(max) = options.max_connections {
        builder = builder.max_connections(max);
    }
    if let Some(timeout) = options.handshake_timeout {
        builder = builder.handshake_timeout(timeout);
    }
    if let Some(timeout) = options.write_timeout {
        builder = builder.write_timeout(timeout);
    }
    if options.queue_events.is_some() || options.queue_bytes.is_some() {
        builder = builder.outbound_queue(
            options.queue_events.unwrap_or(1024),
            options.queue_bytes.unwrap_or(4 * 1024 * 1024),
        );
    }
    let permissive = options.recipes.is_empty();
    if permissive {
        // Without --svcuid the builder's default component (com.example.Component,
        // permissive) gets a token in the flavour's format.
        if let Some(token) = options.svcuid.clone() {
            builder = builder.permissive_component("com.example.Component", token);
        }
    } else {
        for recipe in &options.recipes {
            builder = builder.recipe_file(recipe);
        }
        if let Some(token) = &options.svcuid {
            // The first recipe's component gets the given token.
            match ggipc::emulator::Recipe::from_file(std::path::Path::new(&options.recipes[0])) {
                Ok(r) => builder = builder.component(r.name, token.clone()),
                Err(e) => {
                    eprintln!("ggipc-emulator: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if let Some(secrets) = &options.secrets {
        builder = builder.secrets_file(secrets);
    }
    let emulator = match builder.start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ggipc-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut exports = format!(
        "export AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT={}\n",
        shell_quote(&emulator.socket_path().display().to_string())
    );
    exports.push_str(&format!(
        "export SVCUID={}\n",
        shell_quote(emulator.auth_token())
    ));
    for (name, token) in emulator.components().iter().skip(1) {
        exports.push_str(&format!("# {name}: SVCUID={}\n", shell_quote(token)));
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(exports.as_bytes());
    let _ = out.flush();
    drop(out);
    // `start` returned: the socket is bound and listening, so a component started after
    // the file appears can connect.
    if let Some(path) = &options.env_file {
        if let Err(e) = write_atomically(path, exports.as_bytes()) {
            eprintln!("ggipc-emulator: --env-file {}: {e}", path.display());
            emulator.stop();
            return ExitCode::FAILURE;
        }
        log::info!("exports written to {}", path.display());
    }

    if permissive {
        log::info!(
            "no --recipe: one component, {}, with a permissive policy",
            emulator.component_name()
        );
    } else {
        for (name, _) in emulator.components() {
            log::info!("component {name} loaded");
        }
    }
    if options.control_topic {
        log::info!("control topic {DEPLOY_TOPIC} enabled");
    }
    log::info!(
        "serving {} ({:?}) until SIGINT or SIGTERM",
        emulator.socket_path().display(),
        emulator.flavor()
    );

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    log::info!("stopping");
    emulator.stop();
    if let Some(path) = &options.env_file {
        let _ = std::fs::remove_file(path);
    }
    ExitCode::SUCCESS
}

/// Writes `bytes` to a temp file in `path`'s folder, then renames it over `path`, so a
/// reader sees either no file or the whole of it.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

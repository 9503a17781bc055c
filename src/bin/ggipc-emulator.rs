//! `ggipc-emulator`: a local Greengrass nucleus that any component can be pointed at.
//!
//! Prints shell `export` lines for the socket and the first component's SVCUID, then
//! serves until SIGINT or SIGTERM, logging each call to stderr. Run `--help` for flags.
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
  --secrets FILE         secrets for GetSecretValue (JSON list of {arn|name,
                         secretString|secretBinary, versionId, versionStages})
  --flavor nucleus|lite  behave like the Java nucleus (default) or nucleus lite
  --control-topic        a publish to $ggipc/emulator/deploy (JSON deployment
                         description) triggers a simulated deployment (for tests)
  -v, --verbose          log at debug level (else RUST_LOG / GGIPC_LOG, default info)
  -h, --help             this help

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
            let _ = writeln!(
                std::io::stderr().lock(),
                "ggipc-emulator {:5} {}",
                record.level(),
                record.args()
            );
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
    flavor: Flavor,
    control_topic: bool,
    verbose: bool,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut o = Options {
        socket: None,
        recipes: Vec::new(),
        svcuid: None,
        secrets: None,
        flavor: Flavor::Nucleus,
        control_topic: false,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => o.socket = Some(value("--socket")?),
            "--recipe" => o.recipes.push(value("--recipe")?),
            "--svcuid" => o.svcuid = Some(value("--svcuid")?),
            "--secrets" => o.secrets = Some(value("--secrets")?),
            "--flavor" => {
                o.flavor = match value("--flavor")?.as_str() {
                    "nucleus" => Flavor::Nucleus,
                    "lite" => Flavor::Lite,
                    other => return Err(format!("unknown flavor {other:?} (nucleus or lite)")),
                }
            }
            "--control-topic" => o.control_topic = true,
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

    let mut builder = Emulator::builder()
        .flavor(options.flavor)
        .control_topic(options.control_topic);
    if let Some(socket) = &options.socket {
        builder = builder.socket_path(socket);
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

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "export AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT={}",
        shell_quote(&emulator.socket_path().display().to_string())
    );
    let _ = writeln!(out, "export SVCUID={}", shell_quote(emulator.auth_token()));
    for (name, token) in emulator.components().iter().skip(1) {
        let _ = writeln!(out, "# {name}: SVCUID={}", shell_quote(token));
    }
    let _ = out.flush();
    drop(out);

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

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("ggipc-emulator: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    log::info!("stopping");
    emulator.stop();
    ExitCode::SUCCESS
}

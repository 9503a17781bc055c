//! `ggipc-emulator`: a local Greengrass nucleus that any component can be pointed at.
//!
//! Minimal first cut: `--socket PATH`, `--svcuid TOKEN`, `--flavor nucleus|lite`.

use std::process::ExitCode;

use ggipc::emulator::{Emulator, Flavor};

fn main() -> ExitCode {
    let mut builder = Emulator::builder();
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let result = match arg.as_str() {
            "--socket" => {
                value("--socket").map(|v| builder = std::mem::take(&mut builder).socket_path(v))
            }
            "--svcuid" => value("--svcuid").map(|v| token = Some(v)),
            "--flavor" => value("--flavor").and_then(|v| {
                let flavor = match v.as_str() {
                    "nucleus" => Flavor::Nucleus,
                    "lite" => Flavor::Lite,
                    other => return Err(format!("unknown flavor {other:?} (nucleus or lite)")),
                };
                builder = std::mem::take(&mut builder).flavor(flavor);
                Ok(())
            }),
            "-h" | "--help" => {
                println!("usage: ggipc-emulator [--socket PATH] [--svcuid TOKEN] [--flavor nucleus|lite]");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = result {
            eprintln!("ggipc-emulator: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(token) = token {
        builder = builder.component("com.example.Component", token);
    }
    let emulator = match builder.start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ggipc-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "export AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT={}",
        emulator.socket_path().display()
    );
    println!("export SVCUID={}", emulator.auth_token());
    eprintln!("ggipc-emulator: one component with a permissive policy; serving until stopped");
    loop {
        std::thread::park();
    }
}

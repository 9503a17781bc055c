//! Secrets: read a secret value by name.
//!
//! Outside Greengrass (no `SVCUID`), it starts the embedded emulator with one secret.
//!
//! Run: `cargo run --example secrets [SECRET_ID]`
mod common;

use std::error::Error;

use ggipc::emulator::{Emulator, RecipeFormat, Secret};
use ggipc::model::GetSecretValueRequest;

const RECIPE: &str = "
ComponentName: com.example.Secrets
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.SecretManager:
        com.example.Secrets:secrets:1:
          policyDescription: Allows access to one secret.
          operations:
            - aws.greengrass#GetSecretValue
          resources:
            - arn:aws:secretsmanager:us-east-1:000000000000:secret:MyGreengrassSecret
";

fn main() -> Result<(), Box<dyn Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let secret_id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "MyGreengrassSecret".into());
    let (_emulator, client) = common::connect(
        Emulator::builder()
            .recipe_str(RECIPE, RecipeFormat::Yaml)
            .secret(Secret::string("MyGreengrassSecret", "hunter2")),
    )?;
    let secret = client.get_secret_value(GetSecretValueRequest::new(secret_id.clone()))?;
    println!(
        "secret {} (version {}, stages {:?}): {} bytes",
        secret.secret_id,
        secret.version_id,
        secret.version_stage,
        secret.secret_value.as_bytes().len()
    );
    match secret.secret_value.as_string() {
        Some(_) => println!("it is a string secret (value not printed)"),
        None => println!("it is a binary secret"),
    }
    Ok(())
}

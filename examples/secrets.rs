//! Secrets: read a secret value by name.
//!
//! Outside Greengrass (no `SVCUID`), it starts the embedded emulator with one secret.
//!
//! Run: `cargo run --example secrets [SECRET_ID]`

use std::error::Error;

use ggipc::emulator::{Emulator, RecipeFormat, Secret};
use ggipc::model::GetSecretValueRequest;
use ggipc::Client;

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

fn connect() -> Result<(Option<Emulator>, Client), Box<dyn Error>> {
    if std::env::var_os("SVCUID").is_some() {
        return Ok((None, Client::connect()?));
    }
    println!("no Greengrass environment: using the embedded emulator");
    let emulator = Emulator::builder()
        .recipe_str(RECIPE, RecipeFormat::Yaml)
        .secret(Secret::string("MyGreengrassSecret", "hunter2"))
        .start()?;
    let client = emulator.connect()?;
    Ok((Some(emulator), client))
}

fn main() -> Result<(), Box<dyn Error>> {
    let secret_id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "MyGreengrassSecret".into());
    let (_emulator, client) = connect()?;
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

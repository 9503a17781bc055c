use ggipc::model::{GetConfigurationRequest, GetSecretValueRequest, PublishToTopicRequest};
use ggipc::serde_json::json;

fn main() -> Result<(), ggipc::Error> {
    env_logger::init(); // ggipc's warnings go through `log`; RUST_LOG=warn shows them
    let client = ggipc::Client::connect()?; // the two variables env.sh exported
    let config =
        client.get_configuration(GetConfigurationRequest::new(vec!["Message".to_owned()]))?;
    let message = config
        .value
        .as_ref()
        .and_then(|v| v["Message"].as_str())
        .unwrap_or("?")
        .to_owned();
    let secret = client.get_secret_value(GetSecretValueRequest::new("MyGreengrassSecret"))?;
    client.publish_to_topic(PublishToTopicRequest::json(
        "hello",
        json!({"hello": message}),
    ))?;
    println!(
        "published hello {message} (secret version {})",
        secret.version_id
    );
    Ok(())
}

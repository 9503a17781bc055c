use ggipc::model::PublishToTopicRequest;
use ggipc::serde_json::json;

fn main() -> Result<(), ggipc::Report> {
    env_logger::init(); // ggipc's warnings go through `log`; RUST_LOG=warn shows them
    let client = ggipc::Client::connect()?; // the two variables env.sh exported
    let config = client.get_configuration(["Message"])?; // a request from its one member
    let message = config.value.unwrap_or_default()["Message"].clone();
    let secret = client.get_secret_value("MyGreengrassSecret")?;
    let hello = json!({"hello": message});
    client.publish_to_topic(PublishToTopicRequest::json("hello", hello))?;
    let message = message.as_str().unwrap_or("?");
    println!("published hello {message} (secret {})", secret.version_id);
    Ok(())
}

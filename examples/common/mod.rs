//! Shared by the service-area examples: connect as a component on a device, or, outside
//! Greengrass (no `SVCUID`), start the embedded emulator as `emulator` describes it.

use std::error::Error;

use ggipc::emulator::{Emulator, EmulatorBuilder};
use ggipc::Client;

/// The client, and the emulator when one was started (keep it alive while connected).
pub fn connect(emulator: EmulatorBuilder) -> Result<(Option<Emulator>, Client), Box<dyn Error>> {
    if std::env::var_os(ggipc::AUTH_TOKEN_ENV).is_some() {
        return Ok((None, Client::connect()?));
    }
    println!("no Greengrass environment: using the embedded emulator");
    let emulator = emulator.start()?;
    let client = emulator.connect()?;
    Ok((Some(emulator), client))
}

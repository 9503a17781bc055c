//! The components the emulator knows: version, configuration (with its defaults and
//! modification times), policies and lifecycle state.

use std::collections::HashMap;

use serde_json::Value;

use crate::emulator::common::auth;
use crate::model::LifecycleState;

/// One component known to the emulator.
pub(crate) struct Component {
    pub(crate) version: String,
    pub(crate) config: Value,
    pub(crate) default_config: Value,
    /// Last modification (epoch ms) of configuration leaves, by key path.
    pub(crate) modified: HashMap<Vec<String>, i64>,
    pub(crate) policies: auth::Policies,
    pub(crate) state: LifecycleState,
    pub(crate) removed: bool,
}

impl Component {
    pub(crate) fn new(version: &str, config: Value, policies: auth::Policies) -> Component {
        Component {
            version: version.to_owned(),
            default_config: config.clone(),
            config,
            modified: HashMap::new(),
            policies,
            state: LifecycleState::Starting,
            removed: false,
        }
    }
}

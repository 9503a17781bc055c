//! The emulator's operation registry: what it knows about each operation.
//!
//! The table itself, [`OPERATION_FACTS`](super::operations::OPERATION_FACTS), is generated
//! from the service model by `tools/gen_model.py` into `operations.rs`; this module holds
//! its type and the look-ups the hand-written code uses.

use super::operations::OPERATION_FACTS;

/// What the emulator knows about one operation (one row of the generated table).
#[derive(Debug)]
pub(crate) struct OperationFacts {
    /// Short name, e.g. `PublishToTopic`.
    pub(crate) name: &'static str,
    /// Service area (the emulator module that serves it).
    #[allow(dead_code)]
    pub(crate) area: &'static str,
    /// Whether the operation streams events.
    #[allow(dead_code)]
    pub(crate) streaming: bool,
    /// The `accessControl` service identifier whose policies authorize it.
    pub(crate) service: Option<&'static str>,
    /// Template of the resource checked against policies, e.g. `{topic}`.
    #[allow(dead_code)]
    pub(crate) resource: Option<&'static str>,
    /// Whether the service's policy resources use MQTT wildcards.
    pub(crate) mqtt_matching: bool,
    /// Whether an `accessControl` policy may name it (false for `CancelLocalDeployment`,
    /// which the nucleus does not register under its service).
    pub(crate) grantable: bool,
    /// Whether the nucleus checks anything at all (a policy or a fixed caller).
    pub(crate) checked: bool,
    /// The only callers allowed, for operations restricted to fixed components.
    pub(crate) fixed_callers: &'static [&'static str],
    /// Whether nucleus lite 2.6.0 serves it.
    pub(crate) lite: bool,
}

/// The facts of one operation by short name.
pub(crate) fn facts(name: &str) -> Option<&'static OperationFacts> {
    OPERATION_FACTS.iter().find(|f| f.name == name)
}

/// The operations a policy under `service` may name, in model order; `None` for an
/// unknown service identifier.
pub(crate) fn grantable_operations(service: &str) -> Option<Vec<&'static str>> {
    let ops: Vec<&'static str> = OPERATION_FACTS
        .iter()
        .filter(|f| f.grantable && f.service == Some(service))
        .map(|f| f.name)
        .collect();
    (!ops.is_empty()).then_some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OPERATIONS;

    #[test]
    fn the_emulator_table_agrees_with_the_model_table() {
        assert_eq!(OPERATION_FACTS.len(), OPERATIONS.len());
        for (facts, info) in OPERATION_FACTS.iter().zip(OPERATIONS) {
            assert_eq!(facts.name, info.name);
            assert_eq!(facts.area, info.area);
            assert_eq!(facts.streaming, info.streaming);
            assert_eq!(facts.service, info.auth_service, "{}", info.name);
            assert_eq!(facts.resource, info.auth_resource, "{}", info.name);
        }
    }

    #[test]
    fn policy_facts() {
        let cli = grantable_operations("aws.greengrass.Cli").unwrap();
        assert!(cli.contains(&"ListComponents") && !cli.contains(&"CancelLocalDeployment"));
        assert_eq!(
            facts("CancelLocalDeployment").unwrap().service,
            Some("aws.greengrass.Cli")
        );
        assert!(grantable_operations("aws.greengrass.ipc.nothing").is_none());
        assert!(!facts("UpdateState").unwrap().checked);
        let token = facts("ValidateAuthorizationToken").unwrap();
        assert!(token.checked && token.service.is_none());
        assert_eq!(token.fixed_callers, ["aws.greengrass.StreamManager"]);
        assert!(facts("PublishToIoTCore").unwrap().mqtt_matching);
    }
}

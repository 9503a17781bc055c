//! Lookups in the generated operation table (`operations.rs`): one operation's facts, and
//! the operations a policy may name under a service.

use super::operations::{OperationFacts, OPERATION_FACTS};

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
        let handlers = crate::emulator::handlers::table::HANDLERS;
        assert_eq!(handlers.len(), OPERATIONS.len());
        for ((name, _), info) in handlers.iter().zip(OPERATIONS) {
            assert_eq!(*name, info.name);
        }
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

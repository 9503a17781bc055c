//! Component metrics: PutComponentMetric (recorded, see `Emulator::records().metrics`).
//!
//! # Rules
//!
//! From aws-greengrass/aws-greengrass-nucleus at a28341c; `CM` is
//! `src/main/java/com/aws/greengrass/builtin/services/telemetry/ComponentMetricIPCEventStreamAgent.java`.
//! `IAE` = InvalidArgumentsError. Tests: `tests/emulator_fidelity.rs` (`metrics_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | A caller whose name does not start with `aws.` → `UnauthorizedError` `Principal <c> is not authorized to perform aws.greengrass.ipc.componentmetric:aws.greengrass#PutComponentMetric ` (checked first). | `CM:47,85-93,216-222` |
//! | An empty metric list → IAE `Null or Empty list of metrics found in PutComponentMetricRequest`. | `CM:186-189` |
//! | A metric with an empty name, a name over 32 UTF-8 bytes, no unit or a negative value → IAE `Invalid argument found in PutComponentMetricRequest`. | `CM:190-195` |
//! | Each metric's name is then authorized (`aws.greengrass.StreamManager` always passes): `UnauthorizedError` `Principal <c> is not authorized to perform aws.greengrass.ipc.componentmetric:aws.greengrass#PutComponentMetric with metric name <n>`. | `CM:196,202-212` |
//! | An unknown unit (after removing non-alphanumerics, case-insensitive) → IAE `Invalid telemetry unit: No matching TelemetryUnit type found`, after all metrics were validated. | `CM:113-117,165-177` |
//!
//! Deliberate differences: metrics are recorded, not emitted to the telemetry agent; units
//! are matched by the model's wire values only.

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::texts::nucleus_text;
use crate::emulator::registry::Unary;
use crate::emulator::state::CallContext;
use crate::model::{
    IpcError, PutComponentMetric, PutComponentMetricRequest, PutComponentMetricResponse,
};

impl Unary for PutComponentMetric {
    fn serve(
        ctx: &CallContext<'_>,
        r: PutComponentMetricRequest,
    ) -> Result<PutComponentMetricResponse, IpcError> {
        // Order as in ComponentMetricIPCEventStreamAgent (aws-greengrass-nucleus): the caller
        // check ("aws." prefix), then for each metric its validation followed by its policy
        // check; the unit is checked last.
        ctx.state.authorize(ctx, "PutComponentMetric", &[])?;
        if r.metrics.is_empty() {
            return Err(invalid_arguments(
                "Null or Empty list of metrics found in PutComponentMetricRequest",
            ));
        }
        for m in &r.metrics {
            if m.name.is_empty() || m.name.len() > 32 || !m.value.is_finite() || m.value < 0.0 {
                return Err(invalid_arguments(&nucleus_text(
                    "Invalid argument found in PutComponentMetricRequest",
                    "a metric needs a name of 1 to 32 bytes, a unit and a finite value >= 0",
                )));
            }
            ctx.state
                .authorize(ctx, "PutComponentMetric", std::slice::from_ref(&m.name))?
        }
        for m in &r.metrics {
            if !m.unit.is_known() {
                return Err(invalid_arguments(&nucleus_text(
                    "Invalid telemetry unit: No matching TelemetryUnit type found",
                    &format!("unknown metric unit {:?}", m.unit.as_str()),
                )));
            }
        }
        let mut metrics = ctx.state.metrics.lock();
        for m in r.metrics {
            metrics.push((ctx.component.to_owned(), m));
        }
        drop(metrics);
        Ok(PutComponentMetricResponse::default())
    }
}

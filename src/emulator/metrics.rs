//! Component metrics: PutComponentMetric (recorded, see `Emulator::metrics`).

use serde_json::Value;

use super::server::Outcome;
use super::{invalid_arguments, parse_request, CallContext};
use crate::model::{PutComponentMetricRequest, PutComponentMetricResponse};

pub(crate) fn put_component_metric(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: PutComponentMetricRequest = match parse_request(request, "PutComponentMetricRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    // Order as in ComponentMetricIPCEventStreamAgent (aws-greengrass-nucleus): the caller
    // check ("aws." prefix), then for each metric its validation followed by its policy
    // check; the unit is checked last.
    if let Err(e) = ctx.state.authorize(ctx, "PutComponentMetric", &[]) {
        return Outcome::Error(e);
    }
    if r.metrics.is_empty() {
        return Outcome::Error(invalid_arguments("metrics must not be empty"));
    }
    for m in &r.metrics {
        if m.name.is_empty() || m.name.len() > 32 {
            return Outcome::Error(invalid_arguments("a metric name must be 1 to 32 bytes"));
        }
        if !m.value.is_finite() || m.value < 0.0 {
            return Outcome::Error(invalid_arguments(
                "a metric value must be a finite number >= 0",
            ));
        }
        if let Err(e) =
            ctx.state
                .authorize(ctx, "PutComponentMetric", std::slice::from_ref(&m.name))
        {
            return Outcome::Error(e);
        }
    }
    for m in &r.metrics {
        if !m.unit.is_known() {
            return Outcome::Error(invalid_arguments(&format!(
                "unknown metric unit {:?}",
                m.unit.as_str()
            )));
        }
    }
    let mut metrics = ctx.state.metrics.lock();
    for m in r.metrics {
        metrics.push((ctx.component.to_owned(), m));
    }
    drop(metrics);
    Outcome::response(&PutComponentMetricResponse::default())
}

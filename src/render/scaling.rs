//! scaling.json: the phase, its modelled capacity and what the model gives
//! each app replica, for the app's ScalingModule (packages/nestjs), which
//! serves it at /scaling/phase and /scaling/capacity and measures itself
//! against it at /scaling/status. Every figure is the plan's.

use super::notice::Generated;
use crate::plan::PlannedPhase;
use crate::plan::capacity::{Line, Resource};
use crate::plan::monitoring::{CRITICAL, WARNING};
use serde::Serialize;

#[derive(Serialize)]
struct ScalingFile<'a> {
    /// JSON has no comments: the notice as a field.
    #[serde(rename = "$comment")]
    comment: String,
    project: &'a str,
    phase: PhaseView<'a>,
    capacity: CapacityView<'a>,
    app: AppView,
    workload: WorkloadView,
    alerts: Alerts,
}

/// What the model assumes each request does: the reference backend
/// (examples/backend) does exactly this, so a load test measures the model.
#[derive(Serialize)]
struct WorkloadView {
    requests_per_user_per_min: f64,
    db_queries_per_request: f64,
    read_ratio: f64,
    redis_ops_per_request: f64,
}

#[derive(Serialize)]
struct PhaseView<'a> {
    name: &'a str,
    title: &'a str,
    users: Users,
}

#[derive(Serialize)]
struct Users {
    min: u32,
    max: u32,
}

#[derive(Serialize)]
struct CapacityView<'a> {
    users: u64,
    bottleneck: Resource,
    headroom: f64,
    resources: &'a [Line],
}

#[derive(Serialize)]
struct AppView {
    replicas: u32,
    cpu: f64,
    max_connections_per_replica: u32,
}

/// The utilisation at which the generated alerts warn and page.
#[derive(Serialize)]
struct Alerts {
    warning: f64,
    critical: f64,
}

pub fn scaling_json(phase: &PlannedPhase, g: &Generated) -> anyhow::Result<String> {
    let spec = phase.spec();
    let e = &phase.capacity;
    let file = ScalingFile {
        comment: g.lines("").trim_start().replace("\n ", " "),
        project: spec.project.as_str(),
        phase: PhaseView {
            name: spec.name.as_str(),
            title: &phase.title,
            users: Users {
                min: spec.users.min,
                max: spec.users.max,
            },
        },
        capacity: CapacityView {
            users: e.capacity,
            bottleneck: e.bottleneck,
            headroom: e.headroom,
            resources: &e.lines,
        },
        app: AppView {
            replicas: spec.app.replicas,
            cpu: spec.app.cpu,
            max_connections_per_replica: spec.app.websocket.max_connections_per_replica,
        },
        workload: WorkloadView {
            requests_per_user_per_min: spec.workload.requests_per_user_per_min,
            db_queries_per_request: spec.workload.db_queries_per_request,
            read_ratio: spec.workload.read_ratio,
            redis_ops_per_request: spec.workload.redis_ops_per_request,
        },
        alerts: Alerts {
            warning: WARNING,
            critical: CRITICAL,
        },
    };
    Ok(serde_json::to_string_pretty(&file)? + "\n")
}

//! The app's, services', workers' and regions' steps: they run outside
//! the local target, so each says where it runs.

use super::*;

/// The app, services, workers and regions run outside the local target.
const NOT_LOCAL: &str = "the app, its services and the regions run outside the local target";

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (from, to) = (from.spec(), to.spec());
    let (a, b) = (&from.app, &to.app);
    if b.replicas > a.replicas {
        s.add.push(step(
            format!("Scale the app {} -> {} replicas", a.replicas, b.replicas),
            Risk::Online,
            "new replicas take traffic once healthy",
            elsewhere(NOT_LOCAL),
        ));
    }
    if a.image != b.image || a.cpu != b.cpu || a.memory_mb != b.memory_mb {
        s.settings.push(step(
            "Roll the app to its new image or size",
            Risk::RollingRestart,
            "replace replicas one at a time; WebSocket clients reconnect to the others",
            elsewhere(NOT_LOCAL),
        ));
    }
    for svc in to.services.iter().chain(&to.workers) {
        if !from
            .services
            .iter()
            .chain(&from.workers)
            .any(|o| o.name == svc.name)
        {
            s.add.push(step(
                format!("Deploy {} ({} replicas)", svc.name, svc.replicas),
                Risk::Online,
                "a new service beside the running ones",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
    // A single-region phase's deployment is the primary region of a phase
    // that names its regions: only the secondary ones are new.
    for r in to
        .regions
        .iter()
        .filter(|r| r.role == RegionRole::Secondary)
    {
        if !from.regions.iter().any(|o| o.name == r.name) {
            s.add.push(step(
                format!("Stand up region {} ({})", r.name, r.cloud_region),
                Risk::Online,
                "its read replicas stream across regions from the primary; its Redis starts empty",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
    if b.replicas < a.replicas {
        s.remove.push(loss(
            format!("Scale the app {} -> {} replicas", a.replicas, b.replicas),
            Risk::Online,
            "fewer replicas carry fewer users",
            elsewhere(NOT_LOCAL),
        ));
    }
    for svc in from.services.iter().chain(&from.workers) {
        if !to
            .services
            .iter()
            .chain(&to.workers)
            .any(|o| o.name == svc.name)
        {
            s.remove.push(loss(
                format!("Retire {}", svc.name),
                Risk::Online,
                "after no traffic reaches it",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
}

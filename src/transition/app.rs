//! The app's, services', workers' and regions' steps: they run outside
//! the local target, so each says where it runs.

use super::*;

use super::action::NOT_LOCAL;

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let workloads = |t: &PlannedPhase| -> Vec<String> {
        t.compose.workloads().into_iter().map(|w| w.name).collect()
    };
    let (old, new) = (workloads(from), workloads(to));
    // Compose takes every workload change from the new file at once.
    let take = |retire: Vec<String>| Action::Workloads {
        run: new.clone(),
        retire,
    };
    let (from, to) = (from.spec(), to.spec());
    // New replicas, images and workloads come with the clients' stage:
    // Compose takes a workload's whole new definition (its contract
    // included), which must wait for the data tier the contract names.
    let (a, b) = (&from.app, &to.app);
    if b.replicas > a.replicas {
        s.clients.push(step(
            format!("Scale the app {} -> {} replicas", a.replicas, b.replicas),
            Risk::Online,
            "new replicas take traffic once healthy",
            take(Vec::new()),
        ));
    }
    if a.image != b.image || a.cpu != b.cpu || a.memory_mb != b.memory_mb {
        s.clients.push(step(
            "Roll the app to its new image or size",
            Risk::RollingRestart,
            "replace replicas one at a time (Compose recreates them together: on one machine, expect a short gap); WebSocket clients reconnect to the others",
            take(Vec::new()),
        ));
    }
    for svc in to.services.iter().chain(&to.workers) {
        if !from
            .services
            .iter()
            .chain(&from.workers)
            .any(|o| o.name == svc.name)
        {
            s.clients.push(step(
                format!("Deploy {} ({} replicas)", svc.name, svc.replicas),
                Risk::Online,
                "a new service beside the running ones",
                take(Vec::new()),
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
            take(Vec::new()),
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
                take(only_in(
                    &old.iter().map(String::as_str).collect::<Vec<_>>(),
                    &new.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
            ));
        }
    }
}

//! The rules that need a plan: the capacity a phase carries (CAP001) and
//! the service names scaleplan generates for it (REG002).

use super::capacity::Estimate;
use super::pools;
use super::ports;
use super::target::Target;
use super::topology::Topology;
use crate::diag::{Code, Diagnostic};
use crate::validate::ValidPhase;

pub fn check(phase: &ValidPhase, topologies: &[&Topology], estimate: &Estimate) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    capacity(phase, estimate, &mut out);
    pool_clients(phase, estimate, &mut out);
    if let Some(nodes) = topologies.first() {
        generated_names(phase, nodes, &mut out);
        out.extend(pools::check(phase, &nodes.pgbouncer.budget));
    }
    for topo in topologies {
        ports(phase, topo, &mut out);
    }
    out
}

/// PORT002: no two listeners of an enabled target share an address and
/// port.
fn ports(phase: &ValidPhase, topo: &Topology, out: &mut Vec<Diagnostic>) {
    let targets = &phase.spec.targets;
    let enabled = match topo.target {
        Target::Compose => targets.compose.enabled,
        Target::Local { .. } => targets.local.enabled,
        Target::Cloud => targets.terraform.enabled,
    };
    if !enabled {
        return;
    }
    let target = topo.target.dir();
    // One error per field: a service whose replicas run into a block
    // clashes once per port, and the first says what to change.
    let mut reported = std::collections::BTreeSet::new();
    for (a, b) in ports::clashes(&topo.listeners()) {
        let field = b
            .field
            .as_deref()
            .or(a.field.as_deref())
            .unwrap_or("/targets/local/base_port");
        if !reported.insert(field.to_owned()) {
            continue;
        }
        out.push(Diagnostic::error(
            Code::Port002,
            phase.sources.value_at(field),
            format!(
                "{} and {} would both listen on {} in the {target} target",
                a.what, b.what, b.endpoint
            ),
            "choose another port for the one this field sets",
        ));
    }
}

/// CAP001: the resources must carry the users the phase is planned for.
fn capacity(phase: &ValidPhase, e: &Estimate, out: &mut Vec<Diagnostic>) {
    let spec = &phase.spec;
    if e.capacity >= u64::from(spec.users.max) {
        return;
    }
    let work = e
        .lines
        .iter()
        .find(|l| l.resource == e.bottleneck)
        .map_or(String::new(), |l| l.work.clone());
    let message = format!(
        "phase {} carries about {} concurrent users, below users.max {}: {} is the bottleneck ({work})",
        spec.name,
        e.capacity,
        spec.users.max,
        e.bottleneck.label()
    );
    let help = format!(
        "{}; or, if the shortfall is known, set capacity.allow_below_target: true in this phase",
        e.bottleneck.remedy()
    );
    let at = phase.sources.value_at("/users/max");
    out.push(if spec.capacity.allow_below_target {
        Diagnostic::warning(Code::Cap001, at, message, help)
    } else {
        Diagnostic::error(Code::Cap001, at, message, help)
    });
}

/// CAP002: PgBouncer must take every client the pools open: each replica
/// of the app and of each service or worker that uses PostgreSQL holds a
/// pool per database URL.
fn pool_clients(phase: &ValidPhase, e: &Estimate, out: &mut Vec<Diagnostic>) {
    let pgb = &phase.spec.pgbouncer;
    let slots = pgb.instances * pgb.max_client_conn;
    if e.pool_clients <= slots {
        return;
    }
    out.push(Diagnostic::error(
        Code::Cap002,
        phase.sources.value_at("/pgbouncer/max_client_conn"),
        format!(
            "the database pools open {} client connections (2 URLs x replicas x db_pool_size, for the app and every service and worker that uses postgres), above {} instances x {} max_client_conn = {slots}",
            e.pool_clients, pgb.instances, pgb.max_client_conn
        ),
        "raise pgbouncer.max_client_conn or pgbouncer.instances, or lower app.db_pool_size (and the services' db_pool_size)",
    ));
}

/// REG002: a service or worker may not take a name scaleplan generates,
/// since names become Compose services and host names.
fn generated_names(phase: &ValidPhase, nodes: &Topology, out: &mut Vec<Diagnostic>) {
    let generated = nodes.generated_names();
    let spec = &phase.spec;
    for (list, services) in [("services", &spec.services), ("workers", &spec.workers)] {
        for (i, service) in services.iter().enumerate() {
            let name = service.name.as_str();
            if generated.contains(&name) {
                out.push(Diagnostic::error(
                    Code::Reg002,
                    phase.sources.value_at(&format!("/{list}/{i}/name")),
                    format!("'{name}' is the name of a service scaleplan generates for this phase"),
                    "rename the service, e.g. with a prefix that says what it does",
                ));
            }
        }
    }
}

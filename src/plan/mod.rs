//! Stage 3, plan: each valid phase turned, once, into everything that runs
//! it: the nodes on every target (names, addresses, ports, roles), the
//! PostgreSQL settings, the cloud sizes and the capacity estimate. Later
//! stages read a `PlannedPhase` and never re-derive any of it.

pub mod backup;
pub mod bullmq;
pub mod capacity;
mod checks;
pub mod cloud;
pub mod contract;
pub mod identity;
pub mod images;
pub mod layout;
pub mod loadtest;
pub mod monitoring;
pub mod names;
pub mod pgconf;
pub mod pools;
pub mod ports;
pub mod redisconf;
pub mod target;
pub mod topology;

use crate::diag::{Code, Diagnostic, Diagnostics, Location};
use crate::spec::Phase;
use crate::validate::{self, Checked, ValidPhase};
use capacity::Estimate;
use cloud::CloudPlan;
use std::path::Path;
use std::sync::Arc;
use target::Target;
use topology::Topology;

/// Choices a command makes about the plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The local target's first port instead of the spec's.
    pub base_port: Option<u16>,
    /// The PostgreSQL node that is the primary on the local target and in
    /// Compose, when it is not the spec's (`scaleplan promote` made a
    /// replica the writer): 0 for postgres-primary, `i` for
    /// postgres-replica-i.
    pub writer: Option<u32>,
}

impl Options {
    /// A deployment's options: its ports, and its writer by node name as
    /// its record keeps it (None: the spec's primary).
    pub fn of_deployment(base_port: Option<u16>, writer: Option<&str>) -> Options {
        Options {
            base_port,
            writer: writer.and_then(names::postgres_node_index),
        }
    }
}

/// A phase with everything planned.
#[derive(Clone, Debug)]
pub struct PlannedPhase {
    pub phase: ValidPhase,
    /// `title`, or the name when the spec has none.
    pub title: String,
    pub compose: Topology,
    pub local: Topology,
    /// The nodes as the cloud runs them; `cloud` holds the sizes.
    pub cloud_nodes: Topology,
    pub cloud: CloudPlan,
    pub capacity: Estimate,
    /// What the monitoring watches, from the capacity estimate.
    pub monitoring: monitoring::Monitoring,
    /// The load test's shape, from the capacity estimate.
    pub loadtest: loadtest::LoadTest,
    /// The phase after this one in rollout order, if any.
    pub next: Option<String>,
}

impl PlannedPhase {
    pub fn spec(&self) -> &Phase {
        &self.phase.spec
    }

    pub fn name(&self) -> &str {
        self.phase.spec.name.as_str()
    }

    pub fn topology(&self, target: Target) -> &Topology {
        match target {
            Target::Compose => &self.compose,
            Target::Local { .. } => &self.local,
            Target::Cloud => &self.cloud_nodes,
        }
    }
}

/// Plans one phase; `next` is the phase after it in rollout order.
pub fn plan(phase: &ValidPhase, opts: &Options, next: Option<String>) -> PlannedPhase {
    let spec = &phase.spec;
    let local = Target::Local {
        base_port: opts.base_port.unwrap_or(spec.targets.local.base_port),
    };
    let cloud_nodes = topology::build(spec, Target::Cloud);
    // A promoted standby is the writer on the local target and in Compose
    // alike; in the cloud RDS keeps its own writer.
    let compose = topology::build_with_writer(spec, Target::Compose, opts.writer.unwrap_or(0));
    let capacity = capacity::estimate(spec);
    PlannedPhase {
        title: spec
            .title
            .as_ref()
            .map_or_else(|| spec.name.as_str().to_owned(), |t| t.as_str().to_owned()),
        monitoring: monitoring::plan(spec, &compose, &capacity, next.as_deref()),
        loadtest: loadtest::plan(spec, &capacity),
        compose,
        local: topology::build_with_writer(spec, local, opts.writer.unwrap_or(0)),
        cloud: cloud::plan(spec, &cloud_nodes),
        cloud_nodes,
        capacity,
        next,
        phase: phase.clone(),
    }
}

/// Every phase of a directory, planned, with the diagnostics of every
/// stage so far.
#[derive(Debug, Default)]
pub struct Planned {
    /// Concrete phases in rollout order.
    pub phases: Vec<PlannedPhase>,
    pub diagnostics: Diagnostics,
}

/// Loads, checks and plans every spec of a directory: the front half of
/// the pipeline, which every command runs first.
pub fn plan_dir(dir: &Path, opts: &Options) -> anyhow::Result<Planned> {
    Ok(plan_checked(validate::check_dir(dir)?, opts))
}

/// Plans the phases that passed the schema and adds the rules that need a
/// plan (capacity, the names scaleplan generates).
pub fn plan_checked(checked: Checked, opts: &Options) -> Planned {
    let Checked {
        phases,
        mut diagnostics,
    } = checked;
    let names: Vec<String> = phases
        .iter()
        .map(|p| p.spec.name.as_str().to_owned())
        .collect();
    let phases: Vec<PlannedPhase> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| plan(p, opts, names.get(i + 1).cloned()))
        .collect();
    for p in &phases {
        diagnostics.extend(checks::check(
            &p.phase,
            &[&p.compose, &p.local, &p.cloud_nodes],
            &p.capacity,
        ));
    }
    Planned {
        phases,
        diagnostics,
    }
}

impl Planned {
    pub fn names(&self) -> Vec<&str> {
        self.phases.iter().map(PlannedPhase::name).collect()
    }

    pub fn get(&self, name: &str) -> Option<&PlannedPhase> {
        self.phases.iter().find(|p| p.name() == name)
    }

    /// The named phases (all when `names` is empty). An unknown name is an
    /// error listing the phases that exist.
    pub fn select(&self, names: &[String], dir: &Path) -> Result<Vec<&PlannedPhase>, Diagnostic> {
        if names.is_empty() {
            return Ok(self.phases.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                self.get(name).ok_or_else(|| {
                    Diagnostic::error(
                        Code::Load009,
                        Location::start_of(&Arc::new(dir.to_path_buf())),
                        format!("no phase named '{name}' in {}", dir.display()),
                        format!("phases here: {}", self.names().join(", ")),
                    )
                })
            })
            .collect()
    }
}

/// Planned phases built from JSON in unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Options, PlannedPhase};
    use crate::validate::ValidPhase;

    /// A minimal valid phase with `overlays` merged on, planned.
    pub fn planned(overlays: &[serde_json::Value]) -> PlannedPhase {
        let spec = crate::spec::testing::phase(overlays);
        let file = std::sync::Arc::new(std::path::PathBuf::from("test.yaml"));
        let (_, sources) = crate::spec::node::Node::new(
            crate::spec::node::Kind::Map(vec![]),
            crate::diag::Location::start_of(&file),
        )
        .into_json();
        let phase = ValidPhase {
            spec,
            sources,
            chain: vec![file],
            file_names: vec!["test.yaml".to_owned()],
        };
        super::plan(&phase, &Options::default(), None)
    }
}

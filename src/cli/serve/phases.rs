//! The phases directory, loaded afresh for each request.

use super::super::session::{self, Loaded, Request};
use super::config::Config;
use super::problem::Problem;
use crate::plan::PlannedPhase;

/// Every phase, planned; the specs' diagnostics as a 422 when they stop it.
pub fn load(config: &Config) -> Result<Loaded, Problem> {
    session::load_quiet(&Request::all(&config.phases))
        .map_err(|e| Problem::internal(&e))?
        .map_err(Problem::invalid_specs)
}

pub fn find<'a>(loaded: &'a Loaded, name: &str) -> Result<&'a PlannedPhase, Problem> {
    loaded.planned.get(name).ok_or_else(|| {
        Problem::not_found(format!(
            "no phase {name}: the phases are {}",
            loaded.planned.names().join(", ")
        ))
    })
}

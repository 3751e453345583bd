//! scaleplan: compiles phased scaling specs into the configuration that
//! runs them.
//!
//! The stages, in pipeline order; each imports only from the ones before
//! it (a test checks this):
//!
//! 1. `spec`: read YAML and TOML specs into located trees, merge `extends`
//! 2. `validate`: schema, component rules, rules between phases
//! 3. `plan`: each phase planned once: nodes per target, settings, sizes,
//!    capacity
//! 4. `render`: templates into `Artifacts`, written or checked
//! 5. `transition`: the steps between two planned phases
//! 6. `compare`: two renderings and plans compared; the reports
//! 7. `native`: a phase's local target run as processes
//! 8. `cli`: the commands
//!
//! `diag` (diagnostics), `keyword` (enums of the spec's words) and
//! `output` (stdout) serve every stage.

pub mod diag;
pub mod keyword;
pub mod output;

pub mod spec;

pub mod validate;

pub mod plan;

pub mod render;

pub mod transition;

pub mod compare;

pub mod native;

pub mod cli;

//! scaleplan: compiles phased scaling specs into the configuration that
//! runs them. The stages, in pipeline order: `spec` (load, extends, source
//! map), `validate` (schema, rules), `topology` (plan), `render`
//! (templates), `artifacts` (write, check). `cli` drives them.

pub mod artifacts;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod diag;
pub mod diff;
pub mod native;
pub mod output;
pub mod pgconf;
pub mod render;
pub mod report;
pub mod spec;
pub mod templates;
pub mod terraform;
pub mod topology;
pub mod transition;
pub mod validate;

//! Stage 6, native: `scaleplan up --native`, `down` and `status`: a
//! phase's local target run as processes on this machine, from the files
//! scaleplan generates.
//!
//! Everything a bring-up owns lives in one state directory: the rendered
//! local target (config/), the data of every server, their logs, the
//! secrets (mode 0600, never under out/) and state.json, the record of the
//! processes started, which `down` and `status` read.

mod app;
mod app_launch;
pub mod backup;
mod bringup;
mod control;
mod copy;
pub mod loadtest;
pub mod migrate;
mod monitoring;
pub mod observe;
mod pgbackrest;
mod postgres;
mod probe;
mod procs;
mod proxy;
mod redis;
pub mod resp;
mod secrets;
mod state;
mod tools;
mod up;

pub use control::{ProcStatus, StatusDoc, down, status, status_report};
pub use probe::{run_within, wait_for};
pub use procs::Proc;
pub use secrets::{Secrets, write_private};
pub use state::{DEFAULT_STATE, Promoting, State, save_json};
pub use tools::Tools;
pub use up::{UpOptions, up};

//! How this machine runs the app's replicas (`targets.local.app`),
//! resolved from a planned phase: what a bring-up and a migration hold.

use crate::plan::PlannedPhase;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// How this machine runs the app: the spec's command, in its directory
/// resolved against the phase files'.
#[derive(Clone, Debug)]
pub struct AppLaunch {
    pub command: Vec<String>,
    pub workdir: PathBuf,
}

impl AppLaunch {
    /// None when the phase does not say how to run its app locally.
    pub fn of(phase: &PlannedPhase) -> anyhow::Result<Option<AppLaunch>> {
        let Some(process) = phase
            .local
            .app
            .local
            .as_ref()
            .and_then(|l| l.process.as_ref())
        else {
            return Ok(None);
        };
        let phases_dir = phase
            .phase
            .chain
            .first()
            .and_then(|leaf| leaf.parent())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = phases_dir.join(&process.workdir);
        let workdir = dir.canonicalize().with_context(|| {
            format!(
                "targets.local.app.workdir: {} (relative to {}) does not exist",
                process.workdir,
                phases_dir.display()
            )
        })?;
        // A file the command names that is not there (an app not built
        // yet) would only show as a replica that exits at once.
        if let Some(missing) = process
            .command
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-') && a.contains('/'))
            .find(|a| !workdir.join(a).exists())
        {
            anyhow::bail!(
                "targets.local.app.command names {missing}, which is not in {}: build the app first (the reference backend: `npm ci && npm run build` there), or bring up the data tier only with --no-app",
                workdir.display()
            );
        }
        Ok(Some(AppLaunch {
            command: process.command.clone(),
            workdir,
        }))
    }
}

/// A replica's process name: app-1, app-2, ...
pub fn replica_name(i: usize) -> String {
    format!("{}-{}", crate::plan::topology::APP, i + 1)
}

//! `scaleplan backup` and `scaleplan restore` on the local deployment:
//! pgBackRest's backups of the primary, and a point-in-time restore of it
//! from them, after which the replicas clone the restored primary.

use super::bringup::is_root;
use super::pgbackrest::Repo;
use super::procs::{self, Proc};
use super::state::State;
use super::tools::Tools;
use super::up::{UpOptions, up};
use crate::plan::PlannedPhase;
use crate::render::Renderer;
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

crate::keyword! {
    /// pgBackRest's backup types: a full copy, the changes since the last
    /// full one, or since the last backup of any type.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
    pub enum BackupKind {
        /// Full when the newest full backup is older than the plan's
        /// `full_every_days` (or there is none), else incremental.
        Auto = "auto",
        Full = "full",
        Diff = "diff",
        Incr = "incr",
    }
}

/// What a backup took, and what the repository can now restore.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub label: String,
    /// full, diff or incr: an incremental backup with no full one before
    /// it is taken as a full one.
    #[serde(rename = "type")]
    pub kind: String,
    pub database_bytes: u64,
    pub repository_bytes: u64,
    pub seconds: f64,
    pub backups: usize,
    /// The earliest time a restore reaches, in UTC.
    pub restorable_from: String,
}

/// The repository and the primary of the deployment in `state_dir`, which
/// must run `phase`.
fn deployment(phase: &PlannedPhase, state_dir: &Path) -> anyhow::Result<(State, Repo, Tools)> {
    let state = State::of_phase(state_dir, phase.name())?;
    if state.promoting.is_some() {
        bail!(
            "a promotion of {} is under way: finish it first with `scaleplan promote {} --state {}`",
            state_dir.display(),
            phase.name(),
            state_dir.display()
        );
    }
    let tools = Tools::find()?;
    let repo = Repo::of(
        &tools,
        state_dir,
        &state_dir.join("config/local"),
        &phase.local.postgres.backup,
        is_root().then_some("postgres"),
    )
    .context("this phase's local target archives no WAL")?;
    Ok((state, repo, tools))
}

fn utc(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| epoch.to_string())
}

pub fn backup(
    phase: &PlannedPhase,
    state_dir: &Path,
    kind: BackupKind,
) -> anyhow::Result<BackupReport> {
    let (state, repo, _) = deployment(phase, state_dir)?;
    let primary = &phase.local.postgres.primary;
    if !state.running().iter().any(|p| p.name == primary.name) {
        bail!(
            "{} is not running: a backup copies the running primary\n  help: scaleplan up {} --native --state {}",
            primary.name,
            phase.name(),
            state_dir.display()
        );
    }
    let kind = match kind {
        BackupKind::Auto => {
            let every = i64::from(phase.local.postgres.backup.full_every_days) * 86_400;
            let newest_full = repo
                .info(primary)?
                .backup
                .iter()
                .filter(|b| b.kind == "full")
                .map(|b| b.timestamp.start)
                .max();
            match newest_full {
                Some(t) if jiff::Timestamp::now().as_second() - t < every => BackupKind::Incr,
                _ => BackupKind::Full,
            }
        }
        k => k,
    };
    let started = Instant::now();
    repo.run(
        primary,
        &["backup", &format!("--type={}", kind.as_str())],
        "pgbackrest backup",
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let info = repo.info(primary)?;
    let last = info
        .backup
        .last()
        .context("pgbackrest reports no backup after taking one")?;
    Ok(BackupReport {
        label: last.label.clone(),
        kind: last.kind.clone(),
        database_bytes: last.info.size,
        repository_bytes: last.info.repository.delta,
        seconds,
        backups: info.backup.len(),
        restorable_from: info.earliest().map(utc).unwrap_or_default(),
    })
}

/// Where a restore stops replaying the archive.
#[derive(Clone, Copy, Debug)]
pub enum RestoreTarget {
    /// Everything the archive holds.
    Latest,
    /// The state at this instant (transactions committed by then).
    Time(jiff::Timestamp),
}

impl std::str::FromStr for RestoreTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(RestoreTarget::Latest);
        }
        s.parse::<jiff::Timestamp>().map(RestoreTarget::Time).map_err(|e| {
            format!(
                "'{s}' is neither `latest` nor a time with its offset, such as 2026-12-07T06:30:00Z or '2026-12-07 06:30:00+01:00' ({e})"
            )
        })
    }
}

pub struct RestoreOptions<'a> {
    pub state_dir: &'a Path,
    pub target: RestoreTarget,
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    /// `latest`, or the time restored to, in UTC.
    pub target: String,
    /// From stopping the servers until every replica streams from the
    /// restored primary (`up` prints when each step was done).
    pub seconds: f64,
    /// The primary's data as it was before the restore (each replica's is
    /// beside it, under the same name in its own directory).
    pub kept: PathBuf,
}

pub fn restore(
    phase: &PlannedPhase,
    renderer: &Renderer,
    opts: &RestoreOptions,
) -> anyhow::Result<RestoreReport> {
    let state_dir = opts
        .state_dir
        .canonicalize()
        .with_context(|| format!("reading {}", opts.state_dir.display()))?;
    let (state, repo, _) = deployment(phase, &state_dir)?;
    let pg = &phase.local.postgres;
    let primary = &pg.primary;
    let running = state.running();
    let is_pg = |p: &&Proc| p.name == primary.name || pg.replicas.iter().any(|r| r.name == p.name);
    let primary_runs = running.iter().any(|p| p.name == primary.name);
    let standbys: Vec<&str> = running
        .iter()
        .filter(|p| pg.replicas.iter().any(|r| r.name == p.name))
        .map(|p| p.name.as_str())
        .collect();
    // A lost primary whose standbys still run: they hold WAL newer than
    // the archive, which a restore would throw away.
    if !primary_runs && !standbys.is_empty() && matches!(opts.target, RestoreTarget::Latest) {
        bail!(
            "{} is down and {} still run: they hold WAL the archive may not have yet, and a restore to `latest` would replace them\n  help: promote one instead: scaleplan promote {} --state {}; or, to restore anyway, stop the deployment first (scaleplan down --state {})",
            primary.name,
            standbys.join(", "),
            phase.name(),
            opts.state_dir.display(),
            opts.state_dir.display()
        );
    }
    let info = repo.info(primary)?;
    let Some(earliest) = info.earliest() else {
        bail!(
            "the repository {} holds no backup to restore from\n  help: take one first: scaleplan backup {} --state {}",
            repo.path().display(),
            phase.name(),
            opts.state_dir.display()
        );
    };
    let target = match opts.target {
        RestoreTarget::Latest => None,
        RestoreTarget::Time(t) => {
            if t.as_second() < earliest {
                bail!(
                    "{} is before the earliest point the backups reach, {} (just after the oldest backup ended)",
                    utc(t.as_second()),
                    utc(earliest)
                );
            }
            if t > jiff::Timestamp::now() {
                bail!("{} is in the future", utc(t.as_second()));
            }
            Some(t)
        }
    };
    // Everything committed until now reaches the archive before the
    // primary stops: `check` switches to a new WAL segment and waits
    // until the last one is archived.
    if running.iter().any(|p| p.name == primary.name) {
        repo.run(
            primary,
            &["check"],
            "archiving the primary's last WAL (pgbackrest check)",
        )?;
    } else {
        crate::say!(
            "  {:<22} not running: restoring from the archive as it stands",
            primary.name
        );
    }
    let started = Instant::now();
    let stopping: Vec<Proc> = running.iter().copied().filter(is_pg).cloned().collect();
    crate::say!(
        "stopping PostgreSQL ({})",
        stopping
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let killed = procs::stop_all(&stopping, Duration::from_secs(60));
    if !killed.is_empty() {
        crate::say!("  needed SIGKILL: {}", killed.join(", "));
    }

    // Every node's data is kept beside the restored one, named by the
    // time of this restore, and never deleted by scaleplan: a restore to
    // the wrong time, or one that fails half-way, loses nothing (the
    // replicas may hold WAL newer than the archive).
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let kept = state_dir
        .join(&primary.name)
        .join(format!("data.before-restore-{stamp}"));
    for node in std::iter::once(primary).chain(&pg.replicas) {
        let data = state_dir.join(&node.name).join("data");
        if data.exists() {
            let aside = state_dir
                .join(&node.name)
                .join(format!("data.before-restore-{stamp}"));
            std::fs::rename(&data, &aside)
                .with_context(|| format!("moving {} aside", data.display()))?;
        }
    }
    let data = state_dir.join(&primary.name).join("data");
    std::fs::create_dir_all(&data)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
    }
    super::bringup::give_to(is_root().then_some("postgres"), &data)?;
    let kept_note = format!(
        "each node's data from before the restore is kept in <node>/data.before-restore-{stamp} (the primary's: {})",
        kept.display()
    );
    let mut args = vec!["restore".to_owned()];
    if let Some(t) = target {
        args.push("--type=time".to_owned());
        args.push(format!(
            "--target={}",
            t.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
        ));
        args.push("--target-action=promote".to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::say!(
        "restoring {} from {} ({})",
        primary.name,
        repo.path().display(),
        target.map_or("latest".to_owned(), |t| utc(t.as_second()))
    );
    repo.run(primary, &args, "pgbackrest restore")
        .with_context(|| kept_note.clone())?;
    // The replicas' data went aside with the abandoned timeline: each
    // clones the restored primary when it starts.
    up(
        phase,
        renderer,
        &UpOptions {
            state_dir: &state_dir,
            timeout: opts.timeout,
            previous: Some(phase),
            monitoring: state.monitoring,
            app: state.app,
            reseed: &[],
            reinit_primary: false,
        },
    )
    .with_context(|| kept_note.clone())?;
    // A full backup on the new timeline: the backups taken on the
    // abandoned one after the restore point cannot be restored onto it,
    // and a later restore must not pick one of them.
    crate::say!("taking a full backup of the restored primary (its new timeline)");
    repo.run(
        primary,
        &["backup", "--type=full"],
        "pgbackrest backup after the restore",
    )
    .with_context(|| kept_note.clone())?;
    Ok(RestoreReport {
        target: target.map_or("latest".to_owned(), |t| {
            t.strftime("%Y-%m-%d %H:%M:%S%.f UTC").to_string()
        }),
        seconds: started.elapsed().as_secs_f64(),
        kept,
    })
}

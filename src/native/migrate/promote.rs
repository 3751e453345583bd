//! `scaleplan promote`: the primary is lost, and a replica becomes the
//! writer. The most advanced running replica (or the one named) is
//! promoted; the deployment is planned again with the primary there, so
//! the standbys' upstream, PgBouncer's write database and the proxy's
//! replica list follow from the plan as they always do; the app keeps its
//! DATABASE_URL (the proxy's), which reaches the new primary. The lost
//! primary is never restarted as a standby by itself: it may hold writes
//! the replica never received, and rejoins only through `up --reseed`.

use super::Migrator;
use crate::native::bringup::{Bringup, is_root};
use crate::native::probe;
use crate::native::procs::{self, Launch};
use crate::native::secrets::Secrets;
use crate::native::state::State;
use crate::native::tools::Tools;
use crate::plan::identity::{SUPERUSER, Secret};
use crate::plan::layout::Part;
use crate::plan::names::postgres_node_index;
use crate::plan::{Options, PlannedPhase};
use crate::render::Renderer;
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct PromoteOptions<'a> {
    pub state_dir: &'a Path,
    /// The replica to promote; the most advanced one when None.
    pub replica: Option<&'a str>,
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct PromoteReport {
    pub promoted: String,
    pub lost_primary: String,
    /// The WAL position the promoted replica had received: every
    /// transaction committed before it is on the new primary.
    pub replayed_lsn: String,
    /// What the lost primary had written beyond that position, read from
    /// its WAL; None when its data directory is gone.
    pub lost: Option<LostWrites>,
    /// From the command's start until writes reach the new primary
    /// through the proxy.
    pub seconds: f64,
    /// The setting that makes a commit wait for any one standby, so that
    /// a promotion loses no acknowledged write.
    pub synchronous_standby_names: String,
}

#[derive(Debug, Serialize)]
pub struct LostWrites {
    /// The end of the lost primary's WAL.
    pub primary_end_lsn: String,
    pub bytes: u64,
    /// Transactions it committed that no replica had replayed:
    /// acknowledged to clients and lost by asynchronous replication.
    pub commits: u64,
}

/// An LSN (`16/B374D848`) as a byte position.
fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn promote(
    phase: &PlannedPhase,
    renderer: &Renderer,
    opts: &PromoteOptions,
) -> anyhow::Result<PromoteReport> {
    let started = Instant::now();
    let state_dir = opts
        .state_dir
        .canonicalize()
        .with_context(|| format!("reading {}", opts.state_dir.display()))?;
    let state = State::load(&state_dir)?
        .with_context(|| format!("{} holds no deployment", state_dir.display()))?;
    if state.phase != phase.name() {
        bail!(
            "{} runs phase {}, not {}",
            state_dir.display(),
            state.phase,
            phase.name()
        );
    }
    if let Some(m) = &state.migration {
        bail!(
            "{} is {}: a migration holds the deployment",
            state_dir.display(),
            m.describe()
        );
    }
    let tools = Tools::find()?;
    let secrets = Secrets::load_or_create(&state_dir)?;
    let password = secrets.get(Secret::Postgres).to_owned();
    let pg = &phase.local.postgres;
    let lost = &pg.primary;
    if let Some(p) = state.running().into_iter().find(|p| p.name == lost.name) {
        bail!(
            "{} (the primary) runs (pid {}): `promote` replaces a primary that is lost, and two primaries would split the writes\n  help: stop it first if it must be replaced",
            lost.name,
            p.pid
        );
    }
    let alive: BTreeSet<&str> = state.running().iter().map(|p| p.name.as_str()).collect();
    // Each running standby's replayed position.
    let mut candidates: Vec<(String, u64, String)> = Vec::new();
    for r in pg
        .replicas
        .iter()
        .filter(|r| alive.contains(r.name.as_str()))
    {
        let row = probe::psql(
            &tools,
            r.endpoint.port,
            SUPERUSER,
            &password,
            "postgres",
            // What it has received it replays before it takes writes.
            "SELECT pg_is_in_recovery(), \
             greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), pg_last_wal_replay_lsn())",
        );
        if let Some((true, at, text)) = row.as_deref().and_then(|row| {
            let (rec, at) = row.split_once('|')?;
            Some((rec == "t", lsn(at)?, at.to_owned()))
        }) {
            candidates.push((r.name.clone(), at, text));
        }
    }
    let chosen = match opts.replica {
        Some(name) => candidates
            .iter()
            .find(|c| c.0 == name)
            .with_context(|| {
                format!(
                    "{name} is not a running standby of phase {} (running standbys: {})",
                    phase.name(),
                    names(&candidates)
                )
            })?,
        None => candidates
            .iter()
            .max_by_key(|c| c.1)
            .context("no standby runs: there is nothing to promote\n  help: restore the primary from the backups: scaleplan restore PHASE --to latest")?,
    };
    let (promoted, replayed, replayed_text) = chosen.clone();
    let writer =
        postgres_node_index(&promoted).context("a standby whose name is no node of the plan")?;
    crate::say!(
        "promoting {promoted} (received the WAL to {replayed_text}; running standbys: {})",
        names(&candidates)
    );
    let lost_writes = lost_writes(
        &tools,
        &state_dir.join(&lost.name).join("data"),
        &replayed_text,
        replayed,
        is_root().then_some("postgres"),
    );
    let port = pg
        .replicas
        .iter()
        .find(|r| r.name == promoted)
        .map(|r| r.endpoint.port)
        .context("the promoted node's port")?;
    let done = probe::psql(
        &tools,
        port,
        SUPERUSER,
        &password,
        "postgres",
        "SELECT pg_promote(true, 60)",
    );
    if done.as_deref() != Some("t") {
        bail!("{promoted} did not finish promoting within 60 s");
    }

    // The deployment from now on: the same phase, its primary at the
    // promoted node.
    let after = crate::plan::plan(
        &phase.phase,
        &Options {
            base_port: Some(state.base_port),
            writer: Some(writer),
        },
        phase.next.clone(),
    );
    let next = state_dir.join("config.next");
    crate::native::up::render_local(&after, renderer, &next)?;
    let mut state = state;
    state.postgres_writer = (writer != 0).then(|| promoted.clone());
    state.processes.retain(|p| p.name != lost.name);
    state.save(&state_dir)?;
    let running = state.running().into_iter().cloned().collect();
    let mut m = Migrator {
        b: Bringup {
            tools,
            topo: after.local.clone(),
            state_dir: state_dir.clone(),
            config: state_dir.join("config/local"),
            secrets,
            server_user: is_root().then_some("postgres"),
            state,
            running,
            timeout: opts.timeout,
            app: None,
            reseed: Vec::new(),
            reinit_primary: false,
        },
        before: &phase.local,
        next: next.join("local"),
        from: phase.name(),
        app_rolled: false,
        app_fresh: BTreeSet::new(),
    };
    m.install(&[Part::Postgres, Part::Pgbouncer, Part::Proxy])?;
    m.follow(&lost.name)?;
    m.roll_pgbouncers(false)?;
    m.route_reads()?;
    m.writes_reach(&promoted)?;
    // Its WAL reaches the archive on the new timeline.
    if let Some(repo) = m.b.backup_repo() {
        repo.ready(&m.b.topo.postgres.primary)?;
    }
    m.swap_config()?;
    m.b.app_env()?;
    let seconds = started.elapsed().as_secs_f64();
    let standbys: Vec<String> = std::iter::once(&pg.primary)
        .chain(&pg.replicas)
        .map(|n| format!("\"{}\"", n.name))
        .collect();
    Ok(PromoteReport {
        synchronous_standby_names: format!("ANY 1 ({})", standbys.join(", ")),
        promoted,
        lost_primary: lost.name.clone(),
        replayed_lsn: replayed_text,
        lost: lost_writes,
        seconds,
    })
}

fn names(candidates: &[(String, u64, String)]) -> String {
    match candidates {
        [] => "none".to_owned(),
        c => c
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The lost primary's WAL beyond `from`, read with pg_waldump on its
/// newest timeline: its end, and the commits in it. None when the data
/// directory is gone or holds no WAL to read.
fn lost_writes(
    tools: &Tools,
    data: &Path,
    from_text: &str,
    from: u64,
    user: Option<&str>,
) -> Option<LostWrites> {
    let wal = data.join("pg_wal");
    // Segment files are named by timeline (8 hex digits) and position.
    let timeline = std::fs::read_dir(&wal)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.len() == 24 && name.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(&name[..8], 16).ok())
                .flatten()
        })
        .max()?;
    let out = Launch::new(&tools.postgres_bin.join("pg_waldump"))
        .user(user)
        .arg("--path")
        .arg(&wal)
        .arg("--timeline")
        .arg(timeline.to_string())
        .arg("--start")
        .arg(from_text)
        .command(data)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    Some(read_waldump(
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
        from_text,
        from,
    ))
}

/// pg_waldump's records after `from`: it prints one line per record and
/// stops, on stderr, where the valid WAL ends ("invalid record length at
/// X", or "could not find a valid record after X" when nothing follows).
fn read_waldump(stdout: &str, stderr: &str, from_text: &str, from: u64) -> LostWrites {
    let commits = stdout
        .lines()
        .filter(|l| l.contains("rmgr: Transaction") && l.contains("desc: COMMIT"))
        .count() as u64;
    let words: Vec<&str> = stderr.split_whitespace().collect();
    let end_text = words
        .windows(2)
        .filter(|w| w[0] == "at" || w[0] == "after")
        .map(|w| w[1].trim_end_matches(':'))
        .rfind(|w| lsn(w).is_some())
        .unwrap_or(from_text)
        .to_owned();
    let end = lsn(&end_text).unwrap_or(from).max(from);
    LostWrites {
        primary_end_lsn: end_text,
        bytes: end - from,
        commits,
    }
}

impl Migrator<'_> {
    /// Every standby but the lost primary follows the new primary: a slot
    /// for it there, then a restart onto the new upstream (the timeline
    /// switch comes with the stream).
    fn follow(&mut self, lost: &str) -> anyhow::Result<()> {
        let primary = self.b.topo.postgres.primary.endpoint.port;
        let standbys: Vec<(usize, String, Option<String>)> = self
            .b
            .topo
            .postgres
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.name != lost)
            .map(|(i, r)| (i, r.name.clone(), r.slot.clone()))
            .collect();
        for (i, name, slot) in standbys {
            if let Some(slot) = &slot {
                self.sql(
                    primary,
                    &format!(
                        "SELECT pg_create_physical_replication_slot('{slot}', true) \
                         WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
                    ),
                )?;
            }
            if let Ok(proc) = self.process(&name) {
                procs::stop_in_stages(&proc, &super::postgres::SHUTDOWN);
            }
            self.b.postgres_replica(i)?;
        }
        Ok(())
    }

    /// A write through the proxy's write port (the app's DATABASE_URL)
    /// lands on the new primary.
    fn writes_reach(&self, promoted: &str) -> anyhow::Result<()> {
        let password = self.password(Secret::AppDb);
        let proxy = self.b.topo.proxy.write.port;
        let pg = &self.b.topo.postgres;
        let port = pg.primary.endpoint.port;
        let want = self.sql(port, "SELECT inet_server_port()")?;
        self.until(
            "writes did not reach the new primary through the proxy",
            || {
                probe::psql(
                    &self.b.tools,
                    proxy,
                    &pg.user,
                    &password,
                    &pg.database,
                    "SELECT pg_is_in_recovery()::text || '|' || inet_server_port()",
                )
                .is_some_and(|row| row == format!("false|{want}"))
            },
        )?;
        crate::say!("  writes through the proxy reach {promoted}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_are_byte_positions() {
        assert_eq!(lsn("0/70000A0"), Some(0x0700_00A0));
        assert_eq!(lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(lsn("nonsense"), None);
    }

    #[test]
    fn the_commits_after_the_replayed_position_are_counted_to_the_end_of_the_wal() {
        let stdout = "\
rmgr: Heap        len (rec/tot):     59/    59, tx:        741, lsn: 0/07000028, prev 0/07000000, desc: INSERT off 3
rmgr: Transaction len (rec/tot):     34/    34, tx:        741, lsn: 0/07000068, prev 0/07000028, desc: COMMIT 2026-12-07 06:01:02.000000 UTC
rmgr: Heap        len (rec/tot):     59/    59, tx:        742, lsn: 0/07000090, prev 0/07000068, desc: INSERT off 4
rmgr: Transaction len (rec/tot):     34/    34, tx:        742, lsn: 0/070000D0, prev 0/07000090, desc: COMMIT 2026-12-07 06:01:02.000100 UTC
";
        let stderr = "pg_waldump: error: error in WAL record at 0/070000D0: invalid record length at 0/070000F8: wanted 24, got 0\n";
        let lost = read_waldump(stdout, stderr, "0/7000000", 0x0700_0000);
        assert_eq!(lost.commits, 2);
        assert_eq!(lost.primary_end_lsn, "0/070000F8");
        assert_eq!(lost.bytes, 0xF8);
    }

    #[test]
    fn nothing_after_the_replayed_position_is_nothing_lost() {
        let stderr = "pg_waldump: error: could not find a valid record after 0/4022848\n";
        let lost = read_waldump("", stderr, "0/4022848", 0x0402_2848);
        assert_eq!(lost.commits, 0);
        assert_eq!(lost.bytes, 0);
    }
}

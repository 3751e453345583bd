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
use crate::native::state::{Promoting, State};
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
    pub received_lsn: String,
    /// What the lost primary had written beyond that position, read from
    /// its WAL.
    pub lost: Option<LostWrites>,
    /// Why `lost` could not be read, when it could not.
    pub lost_unread: Option<String>,
    /// From the command's start until writes reach the new primary
    /// through the proxy.
    pub seconds: f64,
    /// The setting that makes a commit wait for any one standby, so that
    /// a promotion loses no acknowledged write.
    pub synchronous_standby_names: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LostWrites {
    /// The end of the lost primary's WAL.
    pub primary_end_lsn: String,
    pub bytes: u64,
    /// Commit records in that WAL: an upper bound on the acknowledged
    /// transactions asynchronous replication lost (a commit may not have
    /// been acknowledged yet, or be the server's own, e.g. an ANALYZE).
    pub commits: u64,
}

/// An LSN (`16/B374D848`) as a byte position.
pub fn lsn(text: &str) -> Option<u64> {
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
    let state = State::of_phase(&state_dir, phase.name())?;
    let tools = Tools::find()?;
    let secrets = Secrets::load_or_create(&state_dir)?;
    let mut state = state;
    let (after, promoted, lost_name, received_text, lost_writes) = match state.promoting.clone() {
        // An earlier run promoted the standby and recorded it; the rest of
        // the deployment follows it now.
        Some(p) => {
            let node = &phase.local.postgres.primary;
            let promoted = node.name.clone();
            crate::say!(
                "finishing the promotion of {promoted} (the lost primary: {})",
                p.lost
            );
            // The choice is recorded before pg_promote: a run that stopped
            // in between left the node a standby, and this one promotes it.
            let in_recovery = probe::psql(
                &tools,
                node.endpoint.port,
                SUPERUSER,
                secrets.get(Secret::Postgres),
                "postgres",
                "SELECT pg_is_in_recovery()",
            );
            if in_recovery.as_deref() == Some("t") {
                promote_node(
                    &tools,
                    &secrets,
                    node.endpoint.port,
                    &promoted,
                    opts.timeout,
                )?;
            }
            (
                phase.clone(),
                promoted,
                p.lost,
                p.received_lsn,
                Err("counted by the run that promoted it".to_owned()),
            )
        }
        None => {
            let chosen = choose(phase, &state, &tools, &secrets, opts.replica)?;
            let lost = &phase.local.postgres.primary;
            let lost_writes = lost_writes(
                &tools,
                &state_dir.join(&lost.name).join("data"),
                &chosen.standby.received_text,
                chosen.standby.received,
                is_root().then_some("postgres"),
            );
            let writer = postgres_node_index(&chosen.standby.name)
                .context("a standby whose name is no node of the plan")?;
            // The deployment from now on: the same phase, its primary at
            // the promoted node. Recorded before pg_promote, as in Compose:
            // from here on, running `promote` again finishes this
            // promotion, pg_promote included where it did not happen.
            let after = crate::plan::plan(
                &phase.phase,
                &Options {
                    base_port: Some(state.base_port),
                    writer: Some(writer),
                },
                phase.next.clone(),
            );
            state.postgres_writer = (writer != 0).then(|| chosen.standby.name.clone());
            state.promoting = Some(Promoting {
                lost: lost.name.clone(),
                received_lsn: chosen.standby.received_text.clone(),
            });
            state.processes.retain(|p| p.name != lost.name);
            state.save(&state_dir)?;
            promote_node(
                &tools,
                &secrets,
                chosen.port,
                &chosen.standby.name,
                opts.timeout,
            )
            .with_context(|| {
                format!(
                    "{} is recorded as the new primary; run `scaleplan promote {} --state {}` again to promote it and finish",
                    chosen.standby.name,
                    phase.name(),
                    opts.state_dir.display()
                )
            })?;
            (
                after,
                chosen.standby.name,
                lost.name.clone(),
                chosen.standby.received_text,
                lost_writes,
            )
        }
    };
    let next = state_dir.join("config.next");
    crate::native::up::render_local(&after, renderer, &next)?;
    let mut m = Migrator {
        b: Bringup::over_running(tools, after.local.clone(), &state_dir, state, opts.timeout)?,
        before: &phase.local,
        next: next.join("local"),
        from: phase.name(),
        app_rolled: false,
        app_fresh: BTreeSet::new(),
    };
    let finish = |m: &mut Migrator| -> anyhow::Result<()> {
        m.install(&[Part::Postgres, Part::Pgbouncer, Part::Proxy])?;
        m.archive_received(&received_text)?;
        m.follow(&lost_name)?;
        m.roll_pgbouncers(false)?;
        m.route_reads()?;
        m.writes_reach(&promoted)?;
        // Its WAL reaches the archive on the new timeline.
        if let Some(repo) = m.b.backup_repo() {
            repo.ready(&m.b.topo.postgres.primary)?;
        }
        m.swap_config()?;
        m.b.app_env()?;
        Ok(())
    };
    finish(&mut m).map_err(|e| {
        e.context(format!(
            "{promoted} is promoted and recorded as the primary, but the deployment has not all followed it; fix the cause, then run `scaleplan promote {} --state {}` to finish",
            phase.name(),
            opts.state_dir.display()
        ))
    })?;
    m.b.state.promoting = None;
    m.b.state.save(&state_dir)?;
    Ok(PromoteReport::new(
        &after.local.postgres,
        (promoted, lost_name, received_text),
        lost_writes,
        started.elapsed().as_secs_f64(),
    ))
}

impl PromoteReport {
    /// The report of a promotion on any target: `pg` is the cluster after
    /// it, `(promoted, lost primary, received LSN)` what it did.
    pub fn new(
        pg: &crate::plan::topology::PostgresCluster,
        (promoted, lost_primary, received_lsn): (String, String, String),
        lost: Result<LostWrites, String>,
        seconds: f64,
    ) -> PromoteReport {
        let standbys: Vec<String> = std::iter::once(&pg.primary)
            .chain(&pg.replicas)
            .map(|n| format!("\"{}\"", n.name))
            .collect();
        PromoteReport {
            synchronous_standby_names: format!("ANY 1 ({})", standbys.join(", ")),
            promoted,
            lost_primary,
            received_lsn,
            lost: lost.as_ref().ok().cloned(),
            lost_unread: lost.err(),
            seconds,
        }
    }
}

/// A running standby and the WAL it has received.
struct Candidate {
    port: u16,
    standby: Standby,
}

/// A standby that answered, and the WAL it has received (what it replays
/// before it takes writes).
pub struct Standby {
    pub name: String,
    pub received: u64,
    pub received_text: String,
}

/// The query that asks a standby how far it is: in recovery, and the WAL
/// it has received; `standby_row` reads the answer.
pub const STANDBY_QUERY: &str = "SELECT pg_is_in_recovery(), \
     greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), pg_last_wal_replay_lsn())";

/// A standby's answer to STANDBY_QUERY; None when it is no standby or the
/// answer is not one.
pub fn standby_row(name: &str, row: &str) -> Option<Standby> {
    let (recovering, at) = row.split_once('|')?;
    (recovering == "t").then_some(())?;
    Some(Standby {
        name: name.to_owned(),
        received: lsn(at)?,
        received_text: at.to_owned(),
    })
}

/// Which standby to promote, on every target: the one named, or the one
/// that received the most WAL. A standby that runs but did not answer
/// (`silent`) may be the most advanced, so nothing is chosen then; a named
/// one behind another is refused (the other could not follow it).
/// `restore` says how this target restores a primary from its backups,
/// the way out when no standby runs.
pub fn pick(
    phase: &str,
    standbys: &[Standby],
    silent: &[&str],
    named: Option<&str>,
    restore: &str,
) -> anyhow::Result<usize> {
    if !silent.is_empty() {
        bail!(
            "{} run{} but did not answer as a standby: the most advanced one cannot be told\n  help: bring {} back, or stop {}, then run promote again",
            silent.join(", "),
            if silent.len() == 1 { "s" } else { "" },
            if silent.len() == 1 { "it" } else { "them" },
            if silent.len() == 1 { "it" } else { "them" }
        );
    }
    let most = standbys.iter().map(|c| c.received).max();
    let list = standbys
        .iter()
        .map(|c| format!("{} ({})", c.name, c.received_text))
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = match named {
        Some(name) => {
            let i = standbys
                .iter()
                .position(|c| c.name == name)
                .with_context(|| {
                    format!(
                        "{name} is not a running standby of phase {phase} (running standbys: {})",
                        if list.is_empty() { "none" } else { &list }
                    )
                })?;
            if Some(standbys[i].received) < most {
                bail!(
                    "{name} has received less WAL than another standby ({list}): that one could not follow it\n  help: promote the most advanced one (leave REPLICA out), or stop the others first"
                );
            }
            i
        }
        None => standbys
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.received)
            .map(|(i, _)| i)
            .with_context(|| format!("no standby runs: there is nothing to promote\n  help: restore the primary from the backups: {restore}"))?,
    };
    crate::say!(
        "promoting {} (it received the WAL to {}; running standbys: {list})",
        standbys[chosen].name,
        standbys[chosen].received_text
    );
    Ok(chosen)
}

/// The standby to promote on the local target. The primary must be gone.
fn choose(
    phase: &PlannedPhase,
    state: &State,
    tools: &Tools,
    secrets: &Secrets,
    named: Option<&str>,
) -> anyhow::Result<Candidate> {
    let pg = &phase.local.postgres;
    let lost = &pg.primary;
    if let Some(p) = state.running().into_iter().find(|p| p.name == lost.name) {
        bail!(
            "{} (the primary) runs (pid {}): `promote` replaces a primary that is lost, and two primaries would split the writes\n  help: stop it first if it must be replaced",
            lost.name,
            p.pid
        );
    }
    let password = secrets.get(Secret::Postgres);
    let alive: BTreeSet<&str> = state.running().iter().map(|p| p.name.as_str()).collect();
    let (mut ports, mut standbys, mut silent) = (Vec::new(), Vec::new(), Vec::new());
    for r in pg
        .replicas
        .iter()
        .filter(|r| alive.contains(r.name.as_str()))
    {
        let row = probe::psql(
            tools,
            r.endpoint.port,
            SUPERUSER,
            password,
            "postgres",
            STANDBY_QUERY,
        );
        match row.as_deref().and_then(|row| standby_row(&r.name, row)) {
            Some(standby) => {
                ports.push(r.endpoint.port);
                standbys.push(standby);
            }
            None => silent.push(r.name.as_str()),
        }
    }
    let restore = format!("scaleplan restore {} --to latest", phase.name());
    let i = pick(phase.name(), &standbys, &silent, named, &restore)?;
    Ok(Candidate {
        port: ports[i],
        standby: standbys.swap_remove(i),
    })
}

/// pg_promote, waited for as long as the bring-up waits for a server;
/// then the node is seen out of recovery (a promotion already requested
/// completes even when the wait for it was cut short).
fn promote_node(
    tools: &Tools,
    secrets: &Secrets,
    port: u16,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let password = secrets.get(Secret::Postgres);
    let seconds = timeout.as_secs().max(10);
    let asked = probe::psql_within(
        tools,
        port,
        (SUPERUSER, password),
        "postgres",
        &format!("SELECT pg_promote(true, {seconds})"),
        timeout + Duration::from_secs(5),
    );
    let promoted = probe::wait_for(timeout, || {
        (probe::psql(
            tools,
            port,
            SUPERUSER,
            password,
            "postgres",
            "SELECT pg_is_in_recovery()",
        )? == "f")
            .then_some(())
    });
    if promoted.is_none() {
        bail!(
            "{name} did not finish promoting within {seconds} s ({})",
            match asked {
                Ok(answer) => format!("pg_promote answered {answer}"),
                Err(e) => format!("{e:#}"),
            }
        );
    }
    Ok(())
}

/// The whole WAL segments in `names` (a promoted node's pg_wal) of an
/// earlier timeline than `timeline` and wholly before `at`: what the
/// standby received from the lost primary, which the lost primary may
/// never have archived. Sorted, so they are pushed in order.
pub fn received_segments(
    names: impl Iterator<Item = String>,
    timeline: u32,
    at: u64,
) -> Vec<String> {
    let mut out: Vec<String> = names
        .filter(|name| {
            let (Some(tli), Some(hi), Some(lo)) = (
                name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()),
                name.get(8..16)
                    .and_then(|t| u64::from_str_radix(t, 16).ok()),
                name.get(16..24)
                    .and_then(|t| u64::from_str_radix(t, 16).ok()),
            ) else {
                return false;
            };
            name.len() == 24 && tli < timeline && (hi << 32) + lo * SEGMENT + SEGMENT <= at
        })
        .collect();
    out.sort();
    out
}

/// The lost primary's WAL beyond `from`, read with pg_waldump on its
/// newest timeline: its end, and the commits in it. Err says why it could
/// not be read.
fn lost_writes(
    tools: &Tools,
    data: &Path,
    from_text: &str,
    from: u64,
    user: Option<&str>,
) -> Result<LostWrites, String> {
    let wal = data.join("pg_wal");
    // Segment files are named by timeline (8 hex digits) and position.
    let timeline = std::fs::read_dir(&wal)
        .map_err(|_| format!("{} is gone", wal.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.len() == 24 && name.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(&name[..8], 16).ok())
                .flatten()
        })
        .max()
        .ok_or_else(|| format!("{} holds no WAL segment", wal.display()))?;
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
        .map_err(|e| format!("pg_waldump did not run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    read_waldump(&String::from_utf8_lossy(&out.stdout), &stderr, from).ok_or_else(|| {
        format!(
            "pg_waldump did not read to the end of its WAL: {}",
            stderr.lines().next().unwrap_or("no message")
        )
    })
}

/// pg_waldump's records after `from`: one line per record, and on stderr
/// where the valid WAL ends: "error in WAL record at X: ... at Y", or
/// "could not find a valid record after X" when nothing follows. None
/// when stderr says neither (a segment missing, a wrong timeline): then
/// the count would be a guess.
pub fn read_waldump(stdout: &str, stderr: &str, from: u64) -> Option<LostWrites> {
    let ended = stderr.contains("error in WAL record at")
        || stderr.contains("could not find a valid record after");
    if !ended {
        return None;
    }
    let commits = stdout
        .lines()
        .filter(|l| l.contains("rmgr: Transaction") && l.contains("desc: COMMIT"))
        .count() as u64;
    let words: Vec<&str> = stderr.split_whitespace().collect();
    let end_text = words
        .windows(2)
        .filter(|w| w[0] == "at" || w[0] == "after")
        .map(|w| w[1].trim_end_matches(':'))
        .rfind(|w| lsn(w).is_some())?
        .to_owned();
    let end = lsn(&end_text)?.max(from);
    Some(LostWrites {
        primary_end_lsn: end_text,
        bytes: end - from,
        commits,
    })
}

/// WAL segments are 16 MB (initdb's default, which scaleplan keeps).
const SEGMENT: u64 = 16 * 1024 * 1024;

impl Migrator<'_> {
    /// The segments the promoted node received from the lost primary, up
    /// to where it took over, pushed to the archive: the lost primary may
    /// not have archived the last ones, and a standby archives nothing of
    /// what it received. pgBackRest takes a segment it already holds,
    /// unchanged, as archived, so pushing one again is harmless. The
    /// segment the promotion cut short PostgreSQL keeps as `.partial`,
    /// which is not pushed.
    fn archive_received(&self, received: &str) -> anyhow::Result<()> {
        let Some(repo) = self.b.backup_repo() else {
            return Ok(());
        };
        let Some(at) = lsn(received) else {
            return Ok(());
        };
        let primary = &self.b.topo.postgres.primary;
        let port = primary.endpoint.port;
        let current = self.sql(port, "SELECT pg_walfile_name(pg_current_wal_lsn())")?;
        let timeline = u32::from_str_radix(current.get(..8).unwrap_or(""), 16)
            .context("the new primary's timeline")?;
        let wal = self.b.state_dir.join(&primary.name).join("data/pg_wal");
        let segments = received_segments(
            std::fs::read_dir(&wal)
                .with_context(|| format!("reading {}", wal.display()))?
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok()),
            timeline,
            at,
        );
        for name in &segments {
            let path = wal.join(name);
            repo.run(
                primary,
                &["archive-push", &path.display().to_string()],
                &format!("pushing {name} to the archive"),
            )?;
        }
        crate::say!(
            "  {} segment(s) it received from the lost primary are in the archive",
            segments.len()
        );
        Ok(())
    }

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
        let lost = read_waldump(stdout, stderr, 0x0700_0000).unwrap();
        assert_eq!(lost.commits, 2);
        assert_eq!(lost.primary_end_lsn, "0/070000F8");
        assert_eq!(lost.bytes, 0xF8);
    }

    #[test]
    fn nothing_after_the_replayed_position_is_nothing_lost() {
        let stderr = "pg_waldump: error: could not find a valid record after 0/4022848\n";
        let lost = read_waldump("", stderr, 0x0402_2848).unwrap();
        assert_eq!(lost.commits, 0);
        assert_eq!(lost.bytes, 0);
    }

    #[test]
    fn a_dump_that_did_not_reach_the_end_counts_nothing() {
        let stderr = "pg_waldump: error: could not find file \"000000010000000000000003\": No such file or directory\n";
        assert!(read_waldump("", stderr, 0x0300_0000).is_none());
    }
}

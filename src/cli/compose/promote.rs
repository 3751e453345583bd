//! `scaleplan promote` on a Compose deployment: the primary's container is
//! gone (killed, its host lost), and a standby becomes the writer. The
//! choice and the report are the local target's (`native::migrate::
//! promote`); what differs is how each step reaches the servers: `docker
//! compose exec` and `run`, and a recreate of each service whose files the
//! new plan changes. The lost primary is never started by it: its service
//! is a standby in the new files, and its data directory, being no
//! standby, makes it refuse to start until reseeded (standby-start.sh).

use super::{Project, Promoting, Record};
use crate::native::migrate::promote::{
    LostWrites, PromoteReport, STANDBY_QUERY, Standby, lsn, pick, read_waldump, received_segments,
    standby_row,
};
use crate::plan::identity::Secret;
use crate::plan::names::postgres_node_index;
use crate::plan::{Options, PlannedPhase};
use crate::render::Renderer;
use anyhow::{Context, bail};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct PromoteOptions<'a> {
    pub state: &'a Path,
    pub replica: Option<&'a str>,
    pub timeout: Duration,
}

/// `phase` as the deployment runs it (planned with its recorded writer).
pub fn promote(
    phase: &PlannedPhase,
    renderer: &Renderer,
    opts: &PromoteOptions,
) -> anyhow::Result<PromoteReport> {
    let started = Instant::now();
    let mut record = Record::load(opts.state)?;
    // The files the deployment runs, rewritten as they are, with `.env`.
    let project = Project::write(phase, renderer, opts.state)?;
    let (promoted, lost, received_lsn, lost_writes) = match record.promoting.clone() {
        Some(p) => {
            let promoted = phase.compose.postgres.primary.name.clone();
            crate::say!(
                "finishing the promotion of {promoted} (the lost primary: {})",
                p.lost
            );
            // The choice is recorded before pg_promote: a run that stopped
            // in between left the node a standby, and this one promotes it.
            if project
                .psql(&promoted, "SELECT pg_is_in_recovery()")
                .as_deref()
                == Some("t")
            {
                promote_service(&project, &promoted, opts.timeout)?;
            }
            archive_received(&project, phase, &promoted, &p.received_lsn)?;
            (
                promoted,
                p.lost,
                p.received_lsn,
                Err("counted by the run that promoted it".to_owned()),
            )
        }
        None => {
            let chosen = choose(phase, &project, opts.replica)?;
            let lost = phase.compose.postgres.primary.name.clone();
            let lost_writes = lost_writes(&project, &lost, &chosen);
            // Recorded before pg_promote: from here on the deployment's
            // writer is the chosen node, and `promote` again finishes the
            // rest, pg_promote included where it did not happen.
            record.postgres_writer =
                (postgres_node_index(&chosen.name) != Some(0)).then(|| chosen.name.clone());
            record.promoting = Some(Promoting {
                lost: lost.clone(),
                received_lsn: chosen.received_text.clone(),
            });
            record.save(opts.state)?;
            promote_service(&project, &chosen.name, opts.timeout).with_context(|| {
                format!(
                    "{} is recorded as the new primary; run `scaleplan promote {} --state {}` again to promote it and finish",
                    chosen.name,
                    phase.name(),
                    opts.state.display()
                )
            })?;
            archive_received(&project, phase, &chosen.name, &chosen.received_text)?;
            (chosen.name, lost, chosen.received_text, lost_writes)
        }
    };
    let writer = postgres_node_index(&promoted).context("a standby that is no node of the plan")?;
    let after = crate::plan::plan(
        &phase.phase,
        &Options {
            base_port: None,
            writer: Some(writer),
        },
        phase.next.clone(),
    );
    follow(&after, renderer, opts, &promoted, &lost).map_err(|e| {
        e.context(format!(
            "{promoted} is promoted and recorded as the primary, but the deployment has not all followed it; fix the cause, then run `scaleplan promote {} --state {}` to finish",
            phase.name(),
            opts.state.display()
        ))
    })?;
    record.promoting = None;
    record.save(opts.state)?;
    Ok(PromoteReport::new(
        &after.compose.postgres,
        (promoted, lost, received_lsn),
        lost_writes,
        started.elapsed().as_secs_f64(),
    ))
}

/// The standby to promote. The primary's container must not run.
fn choose(phase: &PlannedPhase, project: &Project, named: Option<&str>) -> anyhow::Result<Standby> {
    let pg = &phase.compose.postgres;
    let running = project.running()?;
    if running.contains(&pg.primary.name) {
        bail!(
            "{} (the primary) runs: `promote` replaces a primary that is lost, and two primaries would split the writes\n  help: stop it first if it must be replaced: docker compose -f {} stop {}",
            pg.primary.name,
            project.file.display(),
            pg.primary.name
        );
    }
    let (mut standbys, mut silent) = (Vec::new(), Vec::new());
    for r in pg.replicas.iter().filter(|r| running.contains(&r.name)) {
        match project
            .psql(&r.name, STANDBY_QUERY)
            .and_then(|row| standby_row(&r.name, &row))
        {
            Some(s) => standbys.push(s),
            None => silent.push(r.name.as_str()),
        }
    }
    let restore = "the restore commands of docs/compose.md, run on the primary's service";
    let i = pick(phase.name(), &standbys, &silent, named, restore)?;
    Ok(standbys.swap_remove(i))
}

/// pg_promote inside the standby's container, then the node seen out of
/// recovery.
fn promote_service(project: &Project, name: &str, timeout: Duration) -> anyhow::Result<()> {
    let seconds = timeout.as_secs().max(10);
    let asked = project.psql(name, &format!("SELECT pg_promote(true, {seconds})"));
    let deadline = Instant::now() + timeout;
    while project.psql(name, "SELECT pg_is_in_recovery()").as_deref() != Some("f") {
        if Instant::now() > deadline {
            bail!(
                "{name} did not finish promoting within {seconds} s (pg_promote answered {})",
                asked.as_deref().unwrap_or("nothing")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// The WAL segments the promoted node received from the lost primary,
/// pushed to the archive from its container (the lost primary may not
/// have archived them before it died): a restore can then replay up to
/// the promotion. pgBackRest accepts a segment it holds already, when its
/// checksum is the same.
fn archive_received(
    project: &Project,
    phase: &PlannedPhase,
    promoted: &str,
    received: &str,
) -> anyhow::Result<()> {
    let backup = &phase.compose.postgres.backup;
    let (Some(_), Some(at)) = (&backup.archive, lsn(received)) else {
        return Ok(());
    };
    let current = project
        .psql(promoted, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .with_context(|| format!("{promoted}'s WAL file"))?;
    let timeline = u32::from_str_radix(current.get(..8).unwrap_or(""), 16)
        .with_context(|| format!("{promoted}'s timeline in {current}"))?;
    let listed = project.must(&["exec", "-T", promoted, "sh", "-c", "ls \"$PGDATA/pg_wal\""])?;
    let segments = received_segments(listed.lines().map(str::to_owned), timeline, at);
    for name in &segments {
        project
            .must(&[
                "exec",
                "-T",
                promoted,
                "sh",
                "-c",
                &format!(
                    "pgbackrest --stanza={} archive-push \"$PGDATA/pg_wal/{name}\"",
                    backup.stanza
                ),
            ])
            .with_context(|| format!("pushing {name} to the archive"))?;
    }
    crate::say!(
        "  {} segment(s) {promoted} received from the lost primary are in the archive",
        segments.len()
    );
    Ok(())
}

/// What the lost primary wrote beyond what the promoted standby received:
/// pg_waldump over its data volume, in a one-off container of its own
/// service (its container is stopped, so nothing writes there).
fn lost_writes(project: &Project, lost: &str, chosen: &Standby) -> Result<LostWrites, String> {
    // The newest timeline's segments; an LSN is two hexadecimal words,
    // checked when the standby's answer was read.
    let script = format!(
        "cd \"$PGDATA/pg_wal\" || exit 3; \
         tl=$(ls | grep -E '^[0-9A-F]{{24}}$' | cut -c1-8 | sort | tail -n 1); \
         [ -n \"$tl\" ] || {{ echo 'no WAL segment' >&2; exit 4; }}; \
         exec pg_waldump --path . --timeline \"$((16#$tl))\" --start {}",
        chosen.received_text
    );
    let out = project
        .output(&[
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--entrypoint",
            "bash",
            lost,
            "-c",
            &script,
        ])
        .map_err(|e| format!("{e:#}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    read_waldump(
        &String::from_utf8_lossy(&out.stdout),
        &stderr,
        chosen.received,
    )
    .ok_or_else(|| {
        format!(
            "pg_waldump did not read {lost}'s WAL to its end: {}",
            stderr.lines().last().unwrap_or("no message")
        )
    })
}

/// The deployment follows the promoted node: the files of the new plan,
/// the standbys' slots on it, then each changed service recreated (the
/// promoted node as the primary, the PgBouncers one at a time, the proxy,
/// the standbys that ran), and the checks: writes through the proxy reach
/// it, the standbys stream from it, its WAL reaches the archive.
fn follow(
    after: &PlannedPhase,
    renderer: &Renderer,
    opts: &PromoteOptions,
    promoted: &str,
    lost: &str,
) -> anyhow::Result<()> {
    let project = Project::write(after, renderer, opts.state)?;
    let topo = &after.compose;
    let running = project.running()?;
    let following: Vec<&crate::plan::topology::PostgresNode> = topo
        .postgres
        .replicas
        .iter()
        .filter(|r| r.name != lost && running.contains(&r.name))
        .collect();
    for slot in following.iter().filter_map(|r| r.slot.as_deref()) {
        project
            .psql(
                promoted,
                &format!(
                    "SELECT pg_create_physical_replication_slot('{slot}', true) \
                     WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
                ),
            )
            .with_context(|| format!("creating the replication slot {slot} on {promoted}"))?;
    }
    let recreate = |services: &[&str]| -> anyhow::Result<()> {
        let mut args = vec!["up", "--detach", "--no-deps", "--force-recreate", "--wait"];
        args.extend(services);
        project.must(&args).map(|_| ()).map_err(|e| {
            // What the services said, for the operator.
            let mut logs = vec!["logs", "--no-color", "--tail", "20"];
            logs.extend(services);
            let said = project
                .output(&logs)
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            e.context(said)
        })
    };
    // One at a time, so that reads keep a standby to go to. The proxy
    // before the PgBouncers, whose files name the new primary: a recreated
    // PgBouncer is out of the proxy's rotation until its check passes, and
    // the one left serves meanwhile.
    recreate(&[promoted])?;
    for r in &following {
        recreate(&[&r.name])?;
    }
    recreate(&[&topo.proxy.name])?;
    for b in &topo.pgbouncer.instances {
        recreate(&[&b.name])?;
    }
    let (database, reads) = (&topo.postgres.database, &topo.pgbouncer.read_alias);
    reaches(
        &project,
        after,
        promoted,
        (&topo.proxy.write, database),
        "f|t",
        opts.timeout,
    )
    .context("a write through the proxy did not reach the new primary")?;
    if !following.is_empty() {
        reaches(
            &project,
            after,
            promoted,
            (&topo.proxy.read, reads),
            "t|t",
            opts.timeout,
        )
        .context("a read through the proxy did not reach a standby")?;
    }
    let names: Vec<String> = following.iter().map(|r| format!("'{}'", r.name)).collect();
    if !names.is_empty() {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN ({})",
            names.join(", ")
        );
        let want = following.len().to_string();
        wait(
            opts.timeout,
            "the standbys to stream from the new primary",
            || project.psql(promoted, &sql).as_deref() == Some(want.as_str()),
        )?;
    }
    let backup = &topo.postgres.backup;
    if backup.archive.is_some() {
        project.must(&[
            "exec",
            "-T",
            promoted,
            "pgbackrest",
            "--stanza",
            &backup.stanza,
            "check",
        ])?;
    }
    Ok(())
}

/// A query through one of the proxy's endpoints, as the app, until it
/// answers `want` (in recovery, and a transaction id taken: a write on
/// the write endpoint).
fn reaches(
    project: &Project,
    after: &PlannedPhase,
    from: &str,
    (endpoint, database): (&crate::plan::ports::Endpoint, &str),
    want: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let topo = &after.compose;
    let port = endpoint.port.to_string();
    let sql = if want.starts_with('f') {
        "SELECT pg_is_in_recovery(), txid_current() > 0"
    } else {
        "SELECT pg_is_in_recovery(), true"
    };
    let args = [
        "exec",
        "-T",
        "-e",
        "PGPASSWORD",
        from,
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-h",
        &endpoint.host,
        "-p",
        &port,
        "-U",
        &topo.postgres.user,
        "-d",
        database,
        "-c",
        sql,
    ];
    let password = project.secrets.get(Secret::AppDb).to_owned();
    let mut last = String::new();
    wait(
        timeout,
        &format!("{}:{port} to answer", endpoint.host),
        || match super::bounded(
            {
                let mut cmd = project.command(&args);
                cmd.env("PGPASSWORD", &password);
                cmd
            },
            &args,
            Duration::from_secs(60),
        ) {
            Ok(o) => {
                let answer = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                last = format!("{answer}{}", String::from_utf8_lossy(&o.stderr).trim());
                o.status.success() && answer == want
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        },
    )
    .with_context(|| format!("the last answer: {last}"))
}

fn wait(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

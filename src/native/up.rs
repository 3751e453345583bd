//! `scaleplan up --native`: a phase's local target as processes, in the
//! order they need each other: the PostgreSQL primary, its standbys,
//! PgBouncer, then Redis in its mode. The state directory is one
//! deployment: a later phase brought up over it continues it (new nodes
//! join, data stays where it is, and Redis data moves into a cluster when
//! the phase makes one), and `up` of the phase that runs starts only what
//! is not running.

use super::app_launch::AppLaunch;
use super::bringup::{Bringup, is_root};
use super::procs;
use super::secrets::Secrets;
use super::state::State;
use super::tools::Tools;
use crate::plan::PlannedPhase;
use crate::plan::layout::PhaseFile;
use crate::plan::target::Target;
use crate::plan::topology::{RedisLayout, Topology};
use crate::render::Renderer;
use crate::render::artifacts::Artifacts;
use anyhow::{Context, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct UpOptions<'a> {
    pub state_dir: &'a Path,
    /// How long each component may take to become healthy.
    pub timeout: Duration,
    /// The phase the state directory ran last, when it ran one: the
    /// deployment this bring-up continues.
    pub previous: Option<&'a PlannedPhase>,
    /// Also run Prometheus and the exporters.
    pub monitoring: bool,
    /// Run the app's replicas and the edge when the phase says how
    /// (`targets.local.app`); false for the data tier only.
    pub app: bool,
    /// Replicas that may delete their data and clone the primary when it
    /// is another cluster than theirs.
    pub reseed: &'a [String],
    /// Initialise an empty primary where the deployment's is gone.
    pub reinit_primary: bool,
}

/// Brings a phase up as local processes; on any failure stops what it
/// started and reports why.
pub fn up(phase: &PlannedPhase, renderer: &Renderer, opts: &UpOptions) -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let topo = phase.local.clone();
    let Target::Local { base_port } = topo.target else {
        bail!("phase {} has no local topology", phase.name());
    };
    check_versions(&tools, &topo)?;
    // How the app runs, checked before anything is written or started.
    let app = if opts.app {
        AppLaunch::of(phase)?
    } else {
        None
    };

    std::fs::create_dir_all(opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    let state_dir = opts.state_dir.canonicalize()?;
    // Servers running as postgres must reach their files inside.
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755))?;
    let previous = State::load(&state_dir)?;
    let running = match &previous {
        Some(before) => continuing(phase, before, base_port, &state_dir, opts.previous)?,
        None => Vec::new(),
    };

    if previous.as_ref().is_some_and(|p| p.promoting.is_some()) {
        bail!(
            "a promotion of {} is under way: finish it first with `scaleplan promote {} --state {}`",
            state_dir.display(),
            phase.name(),
            opts.state_dir.display()
        );
    }
    // A promoted replica stays the primary: the phase must have it, and
    // must have been planned with it there.
    if let Some(writer) = previous.as_ref().and_then(|p| p.postgres_writer.as_deref())
        && topo.postgres.primary.name != writer
    {
        bail!(
            "{writer} is this deployment's primary (promoted), and phase {} {}",
            phase.name(),
            if crate::plan::names::postgres_node_index(writer)
                .is_some_and(|i| i <= topo.postgres.replicas.len() as u32)
            {
                "was planned with another"
            } else {
                "has no such node: a phase with at least as many replicas keeps it"
            }
        );
    }
    let replicas: Vec<&str> = topo
        .postgres
        .replicas
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    if let Some(unknown) = opts.reseed.iter().find(|n| !replicas.contains(&n.as_str())) {
        bail!(
            "--reseed {unknown}: phase {} has no PostgreSQL replica of that name (it has: {})",
            phase.name(),
            if replicas.is_empty() {
                "none".to_owned()
            } else {
                replicas.join(", ")
            }
        );
    }
    if !opts.app && running.iter().any(|p| p.kind == super::app::KIND) {
        bail!(
            "{} runs the app's replicas: `up` without --no-app keeps them; `scaleplan down --state {}` first to run the data tier only",
            state_dir.display(),
            state_dir.display()
        );
    }
    let config = state_dir.join("config");
    render_local(phase, renderer, &config)?;
    std::fs::create_dir_all(state_dir.join("logs"))?;

    let mut b = Bringup {
        secrets: Secrets::load_or_create(&state_dir)?,
        server_user: is_root().then_some("postgres"),
        state: State {
            phase: phase.name().to_owned(),
            order: phase.spec().order,
            base_port,
            processes: running.clone(),
            monitoring: opts.monitoring
                || previous
                    .as_ref()
                    .is_some_and(|p| p.monitoring && p.phase == phase.name()),
            app: false,
            postgres_cluster: previous.as_ref().and_then(|p| p.postgres_cluster.clone()),
            postgres_writer: previous.as_ref().and_then(|p| p.postgres_writer.clone()),
            promoting: None,
            migration: None,
        },
        running,
        config: config.join("local"),
        tools,
        topo,
        state_dir,
        timeout: opts.timeout,
        app: None,
        reseed: opts.reseed.to_vec(),
        reinit_primary: opts.reinit_primary,
    };
    // A phase that does not say how to run its app runs none.
    b.app = app;
    b.state.app = b.app.is_some();
    let changing = previous
        .as_ref()
        .filter(|p| p.phase != phase.name())
        .map(|p| p.phase.clone());
    match &changing {
        Some(from) => crate::say!(
            "moving the deployment in {} from phase {from} to {} (offline)",
            b.state_dir.display(),
            phase.name()
        ),
        None => crate::say!(
            "bringing up phase {} in {}",
            phase.name(),
            b.state_dir.display()
        ),
    }
    let started = Instant::now();
    let before = opts
        .previous
        .filter(|p| changing.as_deref() == Some(p.name()))
        .map(|p| (&p.local, p.name()));
    let result = run(&mut b, before).and_then(|()| b.app()).and_then(|()| {
        if b.state.monitoring {
            b.monitoring()
        } else {
            Ok(())
        }
    });
    if let Err(e) = result {
        eprintln!("bring-up failed; stopping what it started");
        let kept = b.running.clone();
        let started: Vec<procs::Proc> = b
            .state
            .processes
            .iter()
            .filter(|p| !kept.contains(p))
            .cloned()
            .collect();
        procs::stop_all(&started, Duration::from_secs(10));
        b.state.processes = kept;
        let _ = b.state.save(&b.state_dir);
        return Err(e);
    }
    b.state.save(&b.state_dir)?;
    let app_env = b.app_env()?;
    if let Some(from) = &changing {
        crate::say!(
            "moved from {from} to {} in {:.1} s",
            phase.name(),
            started.elapsed().as_secs_f64()
        );
    }
    print_endpoints(&b, &app_env);
    Ok(())
}

/// The phase's local target rendered into `dir` (replacing what it held):
/// with the spec's base port, byte for byte out/<phase>/local.
pub fn render_local(phase: &PlannedPhase, renderer: &Renderer, dir: &Path) -> anyhow::Result<()> {
    let mut files = Artifacts::default();
    renderer.render_target(phase, phase.local.target, &mut files)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    // Beside the target's directory: what the app's replicas read.
    files.insert(
        PhaseFile::Scaling.rel().to_owned(),
        renderer.scaling_file(phase)?,
    );
    for (path, text) in files.iter() {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
    }
    Ok(())
}

fn run(b: &mut Bringup, before: Option<(&Topology, &str)>) -> anyhow::Result<()> {
    b.postgres_primary()?;
    for i in 0..b.topo.postgres.replicas.len() {
        b.postgres_replica(i)?;
    }
    for i in 0..b.topo.pgbouncer.instances.len() {
        b.pgbouncer(i)?;
    }
    b.proxy()?;
    b.redis()?;
    if let Some((topo, name)) = before {
        b.move_into_cluster(topo, name)?;
    }
    Ok(())
}

/// Checks that this bring-up may continue the deployment the state
/// directory holds, and returns the processes of it that still run (only
/// when it is the same phase: those are kept, not started twice).
fn continuing(
    phase: &PlannedPhase,
    before: &State,
    base_port: u16,
    dir: &Path,
    previous: Option<&PlannedPhase>,
) -> anyhow::Result<Vec<procs::Proc>> {
    let running: Vec<procs::Proc> = before.running().into_iter().cloned().collect();
    if let Some(m) = &before.migration {
        bail!(
            "{} is {}: run `scaleplan migrate {} --state {}` to finish it",
            dir.display(),
            m.describe(),
            m.to,
            dir.display()
        );
    }
    if before.phase != phase.name() && !running.is_empty() {
        bail!(
            "{} runs phase {} ({} processes): to move it to {} while it serves, run `scaleplan migrate {}`; to move it offline, run `scaleplan down --state {}` first",
            dir.display(),
            before.phase,
            running.len(),
            phase.name(),
            phase.name(),
            dir.display()
        );
    }
    if before.base_port != 0 && before.base_port != base_port {
        bail!(
            "{} is a deployment on base port {}, not {base_port}: its nodes know each other by port; bring it up with --base-port {} or use another state directory",
            dir.display(),
            before.base_port,
            before.base_port
        );
    }
    if before.phase != phase.name() {
        let order = previous.map_or(before.order, |p| p.spec().order);
        if order > phase.spec().order && !phase.spec().allow_downgrade {
            bail!(
                "{} holds phase {}, which comes after {} (order {order} > {}): going back shrinks the deployment; set `allow_downgrade: true` in phase {} if that is intended",
                dir.display(),
                before.phase,
                phase.name(),
                phase.spec().order,
                phase.name()
            );
        }
        if previous.is_none() {
            bail!(
                "{} holds phase {}, which the phases directory no longer has: scaleplan cannot tell what it ran",
                dir.display(),
                before.phase
            );
        }
    }
    Ok(running)
}

/// Settings the installed servers do not know are refused; an older
/// server than the spec names is noted.
fn check_versions(tools: &Tools, topo: &Topology) -> anyhow::Result<()> {
    if topo.pgbouncer.max_prepared_statements.is_some() && tools.pgbouncer_minor < 21 {
        bail!(
            "pgbouncer.max_prepared_statements needs PgBouncer 1.21, but 1.{} is installed",
            tools.pgbouncer_minor
        );
    }
    if matches!(topo.redis, RedisLayout::Cluster { .. }) && tools.redis_major < 7 {
        bail!(
            "cluster mode needs Redis 7, but {} is installed",
            tools.redis_major
        );
    }
    if tools.postgres_major < u32::from(topo.postgres.version) {
        crate::say!(
            "note: PostgreSQL {} is installed, the spec names {}; every rendered setting exists in both",
            tools.postgres_major,
            topo.postgres.version
        );
    }
    if tools.pgbouncer_minor < topo.pgbouncer.minor {
        crate::say!(
            "note: PgBouncer 1.{} is installed, the spec names {}; no setting it lacks is rendered",
            tools.pgbouncer_minor,
            topo.pgbouncer.version
        );
    }
    Ok(())
}

fn print_endpoints(b: &Bringup, app_env: &Path) {
    let t = &b.topo;
    crate::say!(
        "phase {} is up. The app's variables (with the secrets): {}",
        b.state.phase,
        app_env.display()
    );
    if let (Some(_), Some(local)) = (&b.app, &t.app.local) {
        crate::say!(
            "  {:<22} http://{} ({} app replicas, sticky by cookie), stats http://{}/",
            super::app::EDGE,
            local.edge,
            t.app.endpoints.len(),
            local.edge_stats
        );
    }
    crate::say!(
        "  {:<22} postgres://{}@{} (writes), {} (reads), stats http://{}/",
        t.proxy.name,
        t.postgres.user,
        t.proxy.write,
        t.proxy.read,
        t.proxy.stats
    );
    for p in &t.pgbouncer.instances {
        crate::say!(
            "  {:<22} postgres://{}@127.0.0.1:{}/{} (writes), /{} (reads)",
            p.name,
            t.postgres.user,
            p.endpoint.port,
            t.pgbouncer.write_db.alias,
            t.pgbouncer.read_alias
        );
    }
    crate::say!(
        "  {:<22} 127.0.0.1:{}",
        t.postgres.primary.name,
        t.postgres.primary.endpoint.port
    );
    for r in &t.postgres.replicas {
        crate::say!("  {:<22} 127.0.0.1:{}", r.name, r.endpoint.port);
    }
    match &t.redis {
        RedisLayout::Standalone { node, .. } => crate::say!(
            "  {:<22} redis://127.0.0.1:{}",
            node.name,
            node.endpoint.port
        ),
        RedisLayout::Sentinel {
            sentinels,
            master_name,
            ..
        } => {
            let list: Vec<String> = sentinels
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.endpoint.port))
                .collect();
            crate::say!(
                "  {:<22} master '{master_name}' via sentinels {}",
                "redis",
                list.join(",")
            );
        }
        RedisLayout::Cluster { nodes, .. } => {
            crate::say!(
                "  {:<22} cluster seed 127.0.0.1:{} ({} nodes)",
                "redis",
                nodes[0].endpoint.port,
                nodes.len()
            );
        }
    }
    if let Some(q) = &t.queue_redis {
        crate::say!(
            "  {:<22} redis://127.0.0.1:{} (BullMQ's queues)",
            q.node.name,
            q.node.endpoint.port
        );
    }
    crate::say!(
        "stop with: scaleplan down --state {}",
        b.state_dir.display()
    );
}

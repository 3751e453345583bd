//! The bring-up itself: PostgreSQL primary, streaming replicas, PgBouncer,
//! then Redis in its mode, each waited for before the next that needs it.

use super::probe::{self, wait_for};
use super::procs::{self, Launch, Proc};
use super::state::State;
use super::tools::Tools;
use crate::plan::PlannedPhase;
use crate::plan::identity::{ADMIN_USER, REPLICATION_USER, SUPERUSER, Secret};
use crate::plan::topology::{self, RedisLayout, Topology};
use crate::render::Renderer;
use crate::render::artifacts::Artifacts;
use crate::render::auth;
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct UpOptions<'a> {
    pub state_dir: &'a Path,
    /// How long each component may take to become healthy.
    pub timeout: Duration,
}

/// The passwords of a bring-up: from the environment, or generated once
/// and kept in the state directory (mode 0600) for later bring-ups.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub postgres: String,
    pub app: String,
    pub replication: String,
    pub pgbouncer_admin: String,
    pub redis: String,
}

fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn valid_secret(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Secrets {
    /// The variables that carry the secrets, as Compose reads them.
    pub fn get(&self, secret: Secret) -> &str {
        match secret {
            Secret::Postgres => &self.postgres,
            Secret::AppDb => &self.app,
            Secret::Replication => &self.replication,
            Secret::PgbouncerAdmin => &self.pgbouncer_admin,
            Secret::Redis => &self.redis,
        }
    }

    /// The variables that carry the secrets, as Compose reads them.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        Secret::ALL
            .iter()
            .map(|s| (s.var(), self.get(*s)))
            .collect()
    }

    pub fn load_or_create(dir: &Path) -> anyhow::Result<Secrets> {
        let path = dir.join("secrets.env");
        let stored: Vec<(String, String)> = std::fs::read_to_string(&path)
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let mut values = Vec::new();
        for var in Secret::ALL.map(Secret::var) {
            let value = match stored.iter().find(|(k, _)| k == var) {
                // Data already initialised with this password wins.
                Some((_, v)) => v.clone(),
                None => match std::env::var(var) {
                    Ok(v) if valid_secret(&v) => v,
                    Ok(_) => bail!("{var} may use letters, digits, '_', '.' and '-' only"),
                    Err(_) => random_secret()?,
                },
            };
            values.push(value);
        }
        let text: String = Secret::ALL
            .map(Secret::var)
            .iter()
            .zip(&values)
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(text.as_bytes())?;
        let mut it = values.into_iter();
        let mut next = || it.next().unwrap_or_default();
        Ok(Secrets {
            postgres: next(),
            app: next(),
            replication: next(),
            pgbouncer_admin: next(),
            redis: next(),
        })
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Hands a path to the postgres user when running as root (PostgreSQL and
/// PgBouncer run as postgres and must own their data and auth files).
fn give_to(user: Option<&str>, path: &Path) -> anyhow::Result<()> {
    if let Some(user) = user {
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(path)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown {user} {} failed", path.display());
        }
    }
    Ok(())
}

struct Bringup {
    tools: Tools,
    topo: Topology,
    state_dir: PathBuf,
    config: PathBuf,
    secrets: Secrets,
    /// The user servers run as when scaleplan runs as root.
    server_user: Option<&'static str>,
    state: State,
    timeout: Duration,
}

/// Brings a phase up as local processes; on any failure stops what it
/// started and reports why.
pub fn up(phase: &PlannedPhase, renderer: &Renderer, opts: &UpOptions) -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let topo = phase.local.clone();
    let crate::plan::target::Target::Local { base_port } = topo.target else {
        bail!("phase {} has no local topology", phase.name());
    };
    check_versions(&tools, &topo)?;

    std::fs::create_dir_all(opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    let state_dir = opts.state_dir.canonicalize()?;
    // Servers running as postgres must reach their files inside.
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755))?;
    if let Some(previous) = State::load(&state_dir)? {
        let running = previous.running();
        if !running.is_empty() {
            bail!(
                "{} already runs phase {} ({} processes): run `scaleplan down --state {}` first",
                state_dir.display(),
                previous.phase,
                running.len(),
                state_dir.display()
            );
        }
    }

    // Render the local target into the state directory: with the default
    // base port this is byte for byte out/<phase>/local.
    let mut files = Artifacts::default();
    renderer.render_target(phase, topo.target, &mut files)?;
    let config = state_dir.join("config");
    if config.exists() {
        std::fs::remove_dir_all(&config)?;
    }
    for (path, text) in files.iter() {
        let full = config.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text)?;
    }
    std::fs::create_dir_all(state_dir.join("logs"))?;

    let mut b = Bringup {
        secrets: Secrets::load_or_create(&state_dir)?,
        server_user: is_root().then_some("postgres"),
        state: State {
            phase: phase.name().to_owned(),
            base_port,
            processes: Vec::new(),
        },
        config: config.join("local"),
        tools,
        topo,
        state_dir,
        timeout: opts.timeout,
    };
    crate::say!(
        "bringing up phase {} in {}",
        b.state.phase,
        b.state_dir.display()
    );
    let result = b.run();
    if let Err(e) = result {
        eprintln!("bring-up failed; stopping what was started");
        procs::stop_all(&b.state.processes, Duration::from_secs(10));
        b.state.processes.clear();
        let _ = b.state.save(&b.state_dir);
        return Err(e);
    }
    b.state.save(&b.state_dir)?;
    b.print_endpoints();
    Ok(())
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

impl Bringup {
    fn run(&mut self) -> anyhow::Result<()> {
        self.postgres_primary()?;
        for i in 0..self.topo.postgres.replicas.len() {
            self.postgres_replica(i)?;
        }
        for i in 0..self.topo.pgbouncer.instances.len() {
            self.pgbouncer(i)?;
        }
        self.redis()?;
        Ok(())
    }

    fn log(&self, name: &str) -> PathBuf {
        self.state_dir.join("logs").join(format!("{name}.log"))
    }

    /// Starts a server, logging to logs/<name>.log, and records it at once
    /// so `down` can stop it even if a later step fails.
    fn spawn(&mut self, launch: Launch, name: &str, kind: &str, port: u16) -> anyhow::Result<()> {
        let proc: Proc = launch.spawn(&self.state_dir, &self.log(name), name, kind, port)?;
        self.state.processes.push(proc);
        self.state.save(&self.state_dir)
    }

    /// Waits for a component; on timeout, fails with the end of its log.
    fn await_ready(
        &self,
        name: &str,
        what: &str,
        since: Instant,
        mut check: impl FnMut() -> Option<()>,
    ) -> anyhow::Result<()> {
        // A server that exits (a port in use, a bad setting) fails the wait
        // at once instead of at the timeout.
        let process = self
            .state
            .processes
            .iter()
            .rev()
            .find(|p| p.name == name)
            .cloned();
        let mut died = false;
        let ready = wait_for(self.timeout, || {
            if check().is_some() {
                return Some(true);
            }
            if process.as_ref().is_some_and(|p| !p.alive()) {
                died = true;
                return Some(false);
            }
            None
        });
        if ready != Some(true) {
            let log = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let why = if died {
                "exited before it was ready".to_owned()
            } else {
                format!("was not {what} within {} s", self.timeout.as_secs())
            };
            bail!(
                "{name} {why}; last lines of {}:\n{}",
                self.log(name).display(),
                tail.join("\n")
            );
        }
        crate::say!(
            "  {name:<22} {what} ({:.1} s)",
            since.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn postgres_launch(&self, name: &str, data: &Path) -> Launch {
        let conf = self.config.join("postgres").join(name);
        Launch::new(&self.tools.postgres)
            .user(self.server_user)
            .arg("-D")
            .arg(data)
            .arg("-c")
            .arg(format!(
                "config_file={}",
                conf.join("postgresql.conf").display()
            ))
            .arg("-c")
            .arg(format!("hba_file={}", conf.join("pg_hba.conf").display()))
    }

    fn postgres_primary(&mut self) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.postgres.primary.clone();
        let dir = self.state_dir.join(&node.name);
        let data = dir.join("data");
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&data)?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
            let pwfile = dir.join("superuser.pw");
            write_private(&pwfile, &format!("{}\n", self.secrets.postgres))?;
            give_to(self.server_user, &dir)?;
            let init = Launch::new(&self.tools.initdb)
                .user(self.server_user)
                .arg("-D")
                .arg(&data)
                .args_str(&[
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .run(&self.state_dir, "initdb");
            let _ = std::fs::remove_file(&pwfile);
            init?;
        }
        let launch = self.postgres_launch(&node.name, &data);
        self.spawn(launch, &node.name, "postgres", node.endpoint.port)?;
        let port = node.endpoint.port;
        self.await_ready(&node.name, "accepting connections", since, || {
            probe::postgres_ready(&self.tools, port).then_some(())
        })?;
        let pg = &self.topo.postgres;
        Launch::new(&self.tools.psql)
            .args_str(&[
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .arg("-v")
            .arg(format!("database={}", pg.database))
            .arg("-v")
            .arg(format!("app_user={}", pg.user))
            .arg("-v")
            .arg(format!("app_password={}", self.secrets.app))
            .arg("-v")
            .arg(format!("replication_user={REPLICATION_USER}"))
            .arg("-v")
            .arg(format!("replication_password={}", self.secrets.replication))
            .arg("-f")
            .arg(self.config.join("postgres/init-roles.sql"))
            .env("PGPASSWORD", &self.secrets.postgres)
            .run(&self.state_dir, "creating roles (init-roles.sql)")?;
        Ok(())
    }

    fn postgres_replica(&mut self, i: usize) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.postgres.replicas[i].clone();
        let primary_port = self.topo.postgres.primary.endpoint.port;
        let dir = self.state_dir.join(&node.name);
        let data = dir.join("data");
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&dir)?;
            give_to(self.server_user, &dir)?;
            let mut backup = Launch::new(&self.tools.pg_basebackup)
                .user(self.server_user)
                .args_str(&[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &primary_port.to_string(),
                    "-U",
                    REPLICATION_USER,
                ])
                .arg("-D")
                .arg(&data)
                .args_str(&["-R", "-X", "stream", "-c", "fast"])
                .env("PGPASSWORD", &self.secrets.replication);
            if let Some(slot) = &node.slot {
                backup = backup.args_str(&["-C", "-S", slot]);
            }
            backup.run(
                &self.state_dir,
                &format!("cloning the primary into {}", node.name),
            )?;
        }
        let launch = self.postgres_launch(&node.name, &data);
        self.spawn(launch, &node.name, "postgres", node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.postgres.clone();
        self.await_ready(&node.name, "streaming from the primary", since, || {
            let recovering = probe::psql(
                &self.tools,
                port,
                SUPERUSER,
                &password,
                "postgres",
                "SELECT pg_is_in_recovery()",
            )?;
            let streaming = probe::psql(
                &self.tools,
                port,
                SUPERUSER,
                &password,
                "postgres",
                "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
            )?;
            (recovering == "t" && streaming == "1").then_some(())
        })
    }

    fn pgbouncer(&mut self, i: usize) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.pgbouncer.instances[i].clone();
        let dir = self.state_dir.join(&node.name);
        std::fs::create_dir_all(&dir)?;
        write_private(
            &dir.join("userlist.txt"),
            &auth::pgbouncer_userlist(&[
                (&self.topo.postgres.user, &self.secrets.app),
                (ADMIN_USER, &self.secrets.pgbouncer_admin),
            ]),
        )?;
        give_to(self.server_user, &dir)?;
        let ini = self
            .config
            .join("pgbouncer")
            .join(&node.name)
            .join("pgbouncer.ini");
        let mut launch = Launch::new(&self.tools.pgbouncer);
        // PgBouncer refuses to run as root; -u makes it drop to postgres.
        if let Some(user) = self.server_user {
            launch = launch.arg("-u").arg(user);
        }
        self.spawn(launch.arg(ini), &node.name, "pgbouncer", node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.pgbouncer_admin.clone();
        // Logging in to the admin console proves the auth file was read:
        // PgBouncer keeps serving with a broken one and only logs an error.
        self.await_ready(&node.name, "accepting logins", since, || {
            probe::psql(
                &self.tools,
                port,
                ADMIN_USER,
                &password,
                "pgbouncer",
                "SHOW VERSION",
            )
            .map(|_| ())
        })
    }

    fn redis(&mut self) -> anyhow::Result<()> {
        let layout = self.topo.redis.clone();
        // Sentinel rewrites the data nodes' files on failover.
        let rewritten = matches!(layout, RedisLayout::Sentinel { .. });
        let auth = auth::redis_auth(&self.secrets.redis);
        for node in layout.data_nodes() {
            self.start_redis(node, "redis", &auth, rewritten)?;
        }
        match &layout {
            RedisLayout::Standalone { .. } => Ok(()),
            RedisLayout::Sentinel {
                nodes,
                sentinels,
                master_name,
                ..
            } => self.sentinels(nodes, sentinels, master_name),
            RedisLayout::Cluster {
                nodes,
                replicas_per_shard,
                ..
            } => self.cluster(nodes, *replicas_per_shard),
        }
    }

    /// Starts a Redis data node or sentinel from its generated file, with
    /// the auth include beside its data, and waits for PING. A file Redis
    /// rewrites itself runs from a writable copy, made once and Redis's own
    /// after that.
    fn start_redis(
        &mut self,
        node: &topology::RedisNode,
        kind: &str,
        auth: &str,
        rewritten: bool,
    ) -> anyhow::Result<()> {
        let since = Instant::now();
        let dir = self.state_dir.join(&node.name);
        std::fs::create_dir_all(&dir)?;
        write_private(&dir.join("auth.conf"), auth)?;
        let (program, file) = if kind == "sentinel" {
            (&self.tools.redis_sentinel, "sentinel.conf")
        } else {
            (&self.tools.redis_server, "redis.conf")
        };
        let generated = self.config.join("redis").join(&node.name).join(file);
        let conf = if rewritten {
            let copy = dir.join(file);
            if !copy.exists() {
                std::fs::copy(&generated, &copy)?;
            }
            copy
        } else {
            generated
        };
        let launch = Launch::new(program).arg(conf);
        self.spawn(launch, &node.name, kind, node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.redis.clone();
        self.await_ready(&node.name, "answering PING", since, || {
            probe::redis_ping(&self.tools, port, &password).then_some(())
        })
    }

    fn sentinels(
        &mut self,
        nodes: &[topology::RedisNode],
        sentinels: &[topology::RedisNode],
        master: &str,
    ) -> anyhow::Result<()> {
        let since = Instant::now();
        let master_port = nodes[0].endpoint.port;
        let replicas = nodes.len() - 1;
        let password = self.secrets.redis.clone();
        self.await_ready(
            &nodes[0].name,
            &format!("serving {replicas} replicas"),
            since,
            || {
                let info = probe::redis(
                    &self.tools,
                    master_port,
                    &password,
                    &["INFO", "replication"],
                )?;
                let online = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                    .count();
                (online == replicas).then_some(())
            },
        )?;
        let auth = auth::sentinel_auth(master, &self.secrets.redis);
        for node in sentinels {
            // Sentinel rewrites its file at start.
            self.start_redis(node, "sentinel", &auth, true)?;
        }
        let since = Instant::now();
        let others = (sentinels.len() - 1).to_string();
        let replicas = replicas.to_string();
        let master_port = master_port.to_string();
        self.await_ready(
            "sentinels",
            "agreed on master, replicas and each other",
            since,
            || {
                sentinels
                    .iter()
                    .all(|s| {
                        let field = |name: &str| {
                            probe::sentinel_field(
                                &self.tools,
                                s.endpoint.port,
                                &password,
                                master,
                                name,
                            )
                        };
                        field("num-other-sentinels").as_deref() == Some(&others)
                            && field("num-slaves").as_deref() == Some(&replicas)
                            && field("port").as_deref() == Some(&master_port)
                    })
                    .then_some(())
            },
        )
    }

    fn cluster(
        &mut self,
        nodes: &[topology::RedisNode],
        replicas_per_shard: u32,
    ) -> anyhow::Result<()> {
        let since = Instant::now();
        let first = nodes[0].endpoint.port;
        let password = self.secrets.redis.clone();
        if !probe::cluster_ok(&self.tools, first, &password) {
            let mut create = Launch::new(&self.tools.redis_cli)
                .arg("--cluster")
                .arg("create");
            for n in nodes {
                create = create.arg(format!("{}:{}", n.endpoint.host, n.endpoint.port));
            }
            create
                .args_str(&[
                    "--cluster-replicas",
                    &replicas_per_shard.to_string(),
                    "--cluster-yes",
                ])
                .env("REDISCLI_AUTH", &password)
                .env("TERM", "dumb")
                .run(&self.state_dir, "redis-cli --cluster create")?;
        }
        self.await_ready("redis-cluster", "covering all 16384 slots", since, || {
            probe::cluster_ok(&self.tools, first, &password).then_some(())
        })?;
        let since = Instant::now();
        let ports: Vec<u16> = nodes.iter().map(|n| n.endpoint.port).collect();
        let replicas = nodes.len() - nodes.len() / (1 + replicas_per_shard as usize);
        self.await_ready(
            "redis-cluster",
            &format!("agreed on {replicas} replicas, all in sync"),
            since,
            || probe::cluster_converged(&self.tools, &ports, &password, replicas).then_some(()),
        )
    }

    fn print_endpoints(&self) {
        let t = &self.topo;
        crate::say!(
            "phase {} is up. Endpoints (secrets in {}):",
            self.state.phase,
            self.state_dir.join("secrets.env").display()
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
        crate::say!(
            "stop with: scaleplan down --state {}",
            self.state_dir.display()
        );
    }
}

//! PostgreSQL in a bring-up: the primary (initialised on first start, its
//! roles set on every start), each standby through its generated
//! standby-start.sh, and the PgBouncer instances.

use super::bringup::{Bringup, give_to};
use super::pgbackrest::Repo;
use super::probe;
use super::procs::Launch;
use super::secrets::write_private;
use crate::plan::identity::{ADMIN_USER, REPLICATION_USER, SUPERUSER, Secret};
use crate::plan::layout::TargetFile;
use crate::render::auth;
use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

/// Recovery settings in the primary's postgresql.auto.conf (pgBackRest's
/// restore writes them), comma-separated.
const RECOVERY_SETTINGS: &str = "SELECT coalesce(string_agg(DISTINCT name, ','), '') FROM pg_file_settings \
     WHERE sourcefile LIKE '%postgresql.auto.conf' \
     AND (name = 'restore_command' OR name LIKE 'recovery_target%')";

impl Bringup {
    pub fn postgres_primary(&mut self) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.postgres.primary.clone();
        let port = node.endpoint.port;
        if !self.keep_running(&node.name) {
            let dir = self.state_dir.join(&node.name);
            let data = dir.join("data");
            if !data.join("global/pg_control").exists() {
                if let Some(id) = self
                    .state
                    .postgres_cluster
                    .as_ref()
                    .filter(|_| !self.reinit_primary)
                {
                    anyhow::bail!(
                        "{} has no data ({}), and this deployment's primary was cluster {id}: not initialising a new, empty cluster in its place (its replicas would refuse it; nothing was changed)\n  help: put the data directory back; or restore it from the backups: `scaleplan restore {} --to latest`; or run `scaleplan up {} --native --reinit-primary` to start an empty primary (the replicas keep their data until `--reseed NODE`)",
                        node.name,
                        data.display(),
                        self.state.phase,
                        self.state.phase
                    );
                }
                self.initdb(&dir)?;
                // A new cluster cannot archive into the old one's stanza;
                // the old backups stay, under the old cluster's name,
                // inside the repository (which may be a mount of its own).
                if let (Some(repo), Some(old)) = (self.backup_repo(), &self.state.postgres_cluster)
                {
                    let stanza = &self.topo.postgres.backup.stanza;
                    for part in ["archive", "backup"] {
                        let dir = repo.path().join(part).join(stanza);
                        if dir.exists() {
                            let aside = repo
                                .path()
                                .join(part)
                                .join(format!("{stanza}.cluster-{old}"));
                            std::fs::rename(&dir, &aside)
                                .with_context(|| format!("moving {} aside", dir.display()))?;
                        }
                    }
                    crate::say!(
                        "  {:<22} the old cluster's backups are kept in {} as {stanza}.cluster-{old}",
                        node.name,
                        repo.path().display()
                    );
                }
            }
            let mut launch = Launch::new(&self.tools.postgres)
                .user(self.server_user)
                .arg("-D")
                .arg(&data)
                .arg("-c")
                .arg(format!(
                    "config_file={}",
                    self.config
                        .join(TargetFile::PostgresConf(&node.name).rel())
                        .display()
                ))
                .arg("-c")
                .arg(format!(
                    "hba_file={}",
                    self.config
                        .join(TargetFile::PgHba(&node.name).rel())
                        .display()
                ));
            if let Some(repo) = self.backup_repo() {
                repo.prepare(&node.name)?;
                launch =
                    launch.args_str(&repo.server_args(&node.name).each_ref().map(String::as_str));
                for (k, v) in repo.env(&node) {
                    launch = launch.env(k, &v);
                }
            }
            self.spawn(launch, &node.name, "postgres", port)?;
            self.await_ready(&node.name, "accepting connections", since, || {
                probe::postgres_ready(&self.tools, port).then_some(())
            })?;
        }
        // A primary restored from a backup (started now, or kept running
        // by an earlier `up` that timed out while it replayed) takes writes
        // only once its recovery ends.
        self.await_recovery(&node.name, port, since)?;
        self.roles(port)?;
        if let Some(repo) = self.backup_repo() {
            repo.ready(&node)?;
        }
        // The cluster this deployment's primary holds, for the check above.
        let id = probe::psql(
            &self.tools,
            port,
            SUPERUSER,
            self.secrets.get(Secret::Postgres),
            "postgres",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .context("reading the primary's system identifier")?;
        if self.state.postgres_cluster.as_deref() != Some(id.as_str()) {
            self.state.postgres_cluster = Some(id);
            self.state.save(&self.state_dir)?;
        }
        Ok(())
    }

    /// pgBackRest's repository of this deployment, when its target archives
    /// WAL.
    pub fn backup_repo(&self) -> Option<Repo> {
        Repo::of(
            &self.tools,
            &self.state_dir,
            &self.config,
            &self.topo.postgres.backup,
            self.server_user,
        )
    }

    /// A primary restored from a backup replays the archive up to its
    /// target and promotes itself: only then does it take writes. The
    /// recovery settings pgBackRest wrote are dropped afterwards, so a
    /// replica cloned from it does not inherit them.
    fn await_recovery(&self, name: &str, port: u16, since: Instant) -> anyhow::Result<()> {
        let password = self.secrets.get(Secret::Postgres).to_owned();
        let sql = |q: &str| probe::psql(&self.tools, port, SUPERUSER, &password, "postgres", q);
        if sql("SELECT pg_is_in_recovery()").as_deref() == Some("t") {
            self.await_ready(name, "recovered and promoted", since, || {
                (sql("SELECT pg_is_in_recovery()")? == "f").then_some(())
            })?;
        }
        let left = sql(RECOVERY_SETTINGS).context("reading the primary's recovery settings")?;
        for key in left.split(',').filter(|k| !k.is_empty()) {
            probe::psql(
                &self.tools,
                port,
                SUPERUSER,
                &password,
                "postgres",
                &format!("ALTER SYSTEM RESET {key}"),
            )
            .with_context(|| format!("dropping {key} after the restore"))?;
        }
        if !left.is_empty() {
            probe::psql(
                &self.tools,
                port,
                SUPERUSER,
                &password,
                "postgres",
                "SELECT pg_reload_conf()",
            )
            .context("reloading after the restore")?;
        }
        Ok(())
    }

    /// initdb into a directory beside the data, renamed into place once
    /// complete: an interrupted initdb is started over, never half-used.
    fn initdb(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        let data = dir.join("data");
        let fresh = dir.join("data.init");
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)?;
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o700))?;
        let pwfile = dir.join("superuser.pw");
        write_private(
            &pwfile,
            &format!("{}\n", self.secrets.get(Secret::Postgres)),
        )?;
        give_to(self.server_user, dir)?;
        let init = Launch::new(&self.tools.initdb)
            .user(self.server_user)
            .arg("-D")
            .arg(&fresh)
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
        let _ = std::fs::remove_dir_all(&data);
        std::fs::rename(&fresh, &data).context("moving the new cluster into place")?;
        Ok(())
    }

    /// The roles and database, idempotently (init-roles.sql), with the
    /// current passwords: a rotated one takes effect here. A rotated
    /// superuser password logs in once with the one the data knows.
    fn roles(&self, port: u16) -> anyhow::Result<()> {
        let pg = &self.topo.postgres;
        let current = self.secrets.get(Secret::Postgres);
        let login = match &self.secrets.superuser_before {
            Some(before)
                if probe::psql(
                    &self.tools,
                    port,
                    SUPERUSER,
                    current,
                    "postgres",
                    "SELECT 1",
                )
                .is_none() =>
            {
                before.as_str()
            }
            _ => current,
        };
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
            .arg(format!("superuser={SUPERUSER}"))
            .arg("-v")
            .arg(format!("superuser_password={current}"))
            .arg("-v")
            .arg(format!("database={}", pg.database))
            .arg("-v")
            .arg(format!("app_user={}", pg.user))
            .arg("-v")
            .arg(format!("app_password={}", self.secrets.get(Secret::AppDb)))
            .arg("-v")
            .arg(format!("replication_user={REPLICATION_USER}"))
            .arg("-v")
            .arg(format!(
                "replication_password={}",
                self.secrets.get(Secret::Replication)
            ))
            .arg("-f")
            .arg(self.config.join(TargetFile::InitRolesSql.rel()))
            .env("PGPASSWORD", login)
            .run(&self.state_dir, "creating roles (init-roles.sql)")?;
        Ok(())
    }

    /// A standby through its generated standby-start.sh, which clones the
    /// primary when needed and then runs PostgreSQL in its place.
    pub fn postgres_replica(&mut self, i: usize) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.postgres.replicas[i].clone();
        if self.keep_running(&node.name) {
            return Ok(());
        }
        let dir = self.state_dir.join(&node.name);
        std::fs::create_dir_all(&dir)?;
        give_to(self.server_user, &dir)?;
        let mut launch = self
            .script("/bin/bash", &TargetFile::StandbyStart(&node.name).rel())
            .user(self.server_user)
            .env("PGPASSWORD", self.secrets.get(Secret::Replication));
        // Its archiver reaches pgBackRest once it is promoted.
        if let Some(repo) = self.backup_repo() {
            repo.prepare(&node.name)?;
            launch = launch.env(
                "SCALEPLAN_SOCKET_DIR",
                &super::pgbackrest::socket_dir(&self.state_dir, &node.name)
                    .display()
                    .to_string(),
            );
            for (k, v) in repo.env(&node) {
                launch = launch.env(k, &v);
            }
        }
        let launch = match std::env::var("SCALEPLAN_CLONE_MAX_RATE") {
            Ok(rate) => launch.env("SCALEPLAN_CLONE_MAX_RATE", &rate),
            Err(_) => launch,
        };
        // standby-start.sh deletes this replica's data for a primary of
        // another cluster only when told that primary's identifier.
        let launch = if self.reseed.contains(&node.name) {
            let id = probe::psql(
                &self.tools,
                self.topo.postgres.primary.endpoint.port,
                SUPERUSER,
                self.secrets.get(Secret::Postgres),
                "postgres",
                "SELECT system_identifier FROM pg_control_system()",
            )
            .context("reading the primary's system identifier for --reseed")?;
            crate::say!(
                "  {:<22} reseeding from the primary (cluster {id}): its data here is replaced",
                node.name
            );
            launch.env("SCALEPLAN_RESEED", &id)
        } else {
            launch
        };
        self.spawn(launch, &node.name, "postgres", node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.get(Secret::Postgres).to_owned();
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

    pub fn pgbouncer(&mut self, i: usize) -> anyhow::Result<()> {
        let since = Instant::now();
        let node = self.topo.pgbouncer.instances[i].clone();
        if self.keep_running(&node.name) {
            return Ok(());
        }
        let dir = self.state_dir.join(&node.name);
        std::fs::create_dir_all(&dir)?;
        write_private(
            &dir.join("userlist.txt"),
            &auth::pgbouncer_userlist(&[
                (&self.topo.postgres.user, self.secrets.get(Secret::AppDb)),
                (ADMIN_USER, self.secrets.get(Secret::PgbouncerAdmin)),
            ]),
        )?;
        give_to(self.server_user, &dir)?;
        let ini = self.config.join(TargetFile::PgbouncerIni(&node.name).rel());
        let mut launch = Launch::new(&self.tools.pgbouncer);
        // PgBouncer refuses to run as root; -u makes it drop to postgres.
        if let Some(user) = self.server_user {
            launch = launch.arg("-u").arg(user);
        }
        self.spawn(launch.arg(ini), &node.name, "pgbouncer", node.endpoint.port)?;
        let port = node.endpoint.port;
        let password = self.secrets.get(Secret::PgbouncerAdmin).to_owned();
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
}

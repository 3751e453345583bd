//! pgBackRest on the local target: the WAL archive the servers push to,
//! the backups `scaleplan backup` takes and the restores `scaleplan
//! restore` runs. The generated pgbackrest.conf holds what the spec decides
//! (retention, compression); what depends on the state directory and on
//! the node reaches pgBackRest as PGBACKREST_* variables, set on each
//! server's start (its archiver inherits them) and on every command here.

use super::procs::Launch;
use super::tools::Tools;
use crate::plan::backup::BackupPlan;
use crate::plan::layout::TargetFile;
use crate::plan::topology::PostgresNode;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The longest path a Unix socket may have (sun_path, less its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// pgBackRest's repository and the nodes it reaches, for one deployment.
pub struct Repo {
    program: PathBuf,
    state_dir: PathBuf,
    conf: PathBuf,
    stanza: String,
    user: Option<&'static str>,
}

/// Where the repository, its log and its locks live in a state directory.
const REPO: &str = "backup/repo";
const LOG: &str = "backup/log";
const LOCK: &str = "backup/lock";

/// A node's socket directory (mode 0700): PostgreSQL's only Unix socket
/// here, where pgBackRest logs in as the server's own user.
pub fn socket_dir(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join(node).join("run")
}

impl Repo {
    /// The repository of a deployment whose plan archives WAL; None when
    /// its target does not.
    pub fn of(
        tools: &Tools,
        state_dir: &Path,
        config: &Path,
        plan: &BackupPlan,
        user: Option<&'static str>,
    ) -> Option<Repo> {
        plan.archive.as_ref()?;
        Some(Repo {
            program: tools.pgbackrest.clone(),
            state_dir: state_dir.to_path_buf(),
            conf: config.join(TargetFile::PgbackrestConf.rel()),
            stanza: plan.stanza.clone(),
            user,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.state_dir.join(REPO)
    }

    /// The repository's directories, and the node's socket directory,
    /// owned by the server's user.
    pub fn prepare(&self, node: &str) -> anyhow::Result<()> {
        let socket = socket_dir(&self.state_dir, node);
        let longest = socket.join(".s.PGSQL.65535.lock");
        if longest.as_os_str().len() > SOCKET_PATH_MAX {
            bail!(
                "the state directory's path is too long for {node}'s Unix socket ({} is over {SOCKET_PATH_MAX} bytes), which pgBackRest needs\n  help: use a shorter --state directory",
                longest.display()
            );
        }
        for dir in [
            socket,
            self.state_dir.join(REPO),
            self.state_dir.join(LOG),
            self.state_dir.join(LOCK),
        ] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            super::bringup::give_to(self.user, &dir)?;
        }
        let backup = self.state_dir.join("backup");
        super::bringup::give_to(self.user, &backup)
    }

    /// PGBACKREST_* for commands on `node`, and for the node's server.
    pub fn env(&self, node: &PostgresNode) -> Vec<(&'static str, String)> {
        let at = |rel: &str| self.state_dir.join(rel).display().to_string();
        vec![
            ("PGBACKREST_CONFIG", self.conf.display().to_string()),
            ("PGBACKREST_REPO1_PATH", at(REPO)),
            ("PGBACKREST_LOG_PATH", at(LOG)),
            ("PGBACKREST_LOCK_PATH", at(LOCK)),
            (
                "PGBACKREST_PG1_PATH",
                self.state_dir
                    .join(&node.name)
                    .join("data")
                    .display()
                    .to_string(),
            ),
            ("PGBACKREST_PG1_PORT", node.endpoint.port.to_string()),
            (
                "PGBACKREST_PG1_SOCKET_PATH",
                socket_dir(&self.state_dir, &node.name)
                    .display()
                    .to_string(),
            ),
        ]
    }

    /// The server's own arguments: its socket directory.
    pub fn server_args(&self, node: &str) -> [String; 2] {
        [
            "-c".to_owned(),
            format!(
                "unix_socket_directories={}",
                socket_dir(&self.state_dir, node).display()
            ),
        ]
    }

    fn command(&self, node: &PostgresNode, args: &[&str]) -> Launch {
        let mut launch = Launch::new(&self.program)
            .user(self.user)
            .arg(format!("--stanza={}", self.stanza));
        for (k, v) in self.env(node) {
            launch = launch.env(k, &v);
        }
        launch.args_str(args)
    }

    /// Runs a pgBackRest command against `node`.
    pub fn run(&self, node: &PostgresNode, args: &[&str], what: &str) -> anyhow::Result<String> {
        self.command(node, args).run(&self.state_dir, what)
    }

    /// The stanza exists and the node's WAL reaches the archive: creates
    /// the stanza (once; a later run finds it), then `check` switches a
    /// WAL segment and waits for it in the repository.
    pub fn ready(&self, primary: &PostgresNode) -> anyhow::Result<()> {
        self.run(primary, &["stanza-create"], "pgbackrest stanza-create")
            .map_err(|e| {
                e.context(format!(
                    "the backup repository {} holds another cluster's backups",
                    self.path().display()
                ))
            })?;
        self.run(primary, &["check"], "pgbackrest check (the WAL archive)")?;
        Ok(())
    }

    /// What the repository holds.
    pub fn info(&self, node: &PostgresNode) -> anyhow::Result<Info> {
        let out = self.run(node, &["info", "--output=json"], "pgbackrest info")?;
        let stanzas: Vec<Info> =
            serde_json::from_str(&out).context("reading pgbackrest info's JSON")?;
        stanzas
            .into_iter()
            .find(|s| s.name == self.stanza)
            .with_context(|| format!("the repository has no stanza {}", self.stanza))
    }
}

/// `pgbackrest info --output=json`, the parts read here.
#[derive(Debug, Deserialize)]
pub struct Info {
    pub name: String,
    #[serde(default)]
    pub backup: Vec<BackupInfo>,
    #[serde(default)]
    pub archive: Vec<ArchiveInfo>,
}

#[derive(Debug, Deserialize)]
pub struct BackupInfo {
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Span,
    pub info: Sizes,
}

#[derive(Debug, Deserialize)]
pub struct Span {
    pub start: i64,
    pub stop: i64,
}

#[derive(Debug, Deserialize)]
pub struct Sizes {
    /// Bytes of the database the backup covers.
    pub size: u64,
    pub repository: RepoSize,
}

#[derive(Debug, Deserialize)]
pub struct RepoSize {
    /// Bytes it takes in the repository, compressed.
    pub delta: u64,
}

#[derive(Debug, Deserialize)]
pub struct ArchiveInfo {
    pub min: Option<String>,
    pub max: Option<String>,
}

impl Info {
    /// The earliest time a restore can reach: the second after the end
    /// of the oldest backup (a restore replays WAL from a backup's end
    /// onward, and pgBackRest compares whole seconds).
    pub fn earliest(&self) -> Option<i64> {
        self.backup.iter().map(|b| b.timestamp.stop + 1).min()
    }
}

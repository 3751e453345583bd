//! The server binaries `up --native` runs, found on this machine, with the
//! Debian package that provides each when it is missing.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug)]
pub struct Tools {
    pub postgres: PathBuf,
    pub initdb: PathBuf,
    pub pg_basebackup: PathBuf,
    pub pg_isready: PathBuf,
    pub psql: PathBuf,
    pub pgbouncer: PathBuf,
    pub redis_server: PathBuf,
    pub redis_sentinel: PathBuf,
    pub redis_cli: PathBuf,
    pub haproxy: PathBuf,
    /// The WAL archive and backups (`postgres.backup`).
    pub pgbackrest: PathBuf,
    /// PostgreSQL's server binaries (outside PATH on Debian), which the
    /// generated scripts find on the PATH `path()` gives them.
    pub postgres_bin: PathBuf,
    /// Installed versions, for the notes `up` prints and the settings it
    /// refuses.
    pub postgres_major: u32,
    pub pgbouncer_minor: u32,
    pub redis_major: u32,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// PostgreSQL's server binaries live in /usr/lib/postgresql/<major>/bin on
/// Debian, outside PATH; the newest installed major wins.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

fn find(name: &str, package: &str, pg_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = pg_dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
        return Ok(p);
    }
    match on_path(name) {
        Some(p) => Ok(p),
        None => bail!(
            "`{name}` is not installed: install the Debian package {package} (apt-get install {package})"
        ),
    }
}

fn version_output(program: &Path) -> anyhow::Result<String> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", program.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first run of digits after `marker` in `text`, split at dots.
fn numbers_after(text: &str, marker: &str) -> Vec<u32> {
    let Some(start) = text.find(marker) else {
        return Vec::new();
    };
    text[start + marker.len()..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl Tools {
    pub fn find() -> anyhow::Result<Tools> {
        let pg_dir = postgres_bin_dir();
        let pg = pg_dir.as_deref();
        let mut missing = Vec::new();
        let mut get = |name: &str, package: &str| match find(name, package, pg) {
            Ok(p) => p,
            Err(e) => {
                missing.push(e.to_string());
                PathBuf::new()
            }
        };
        let postgres = get("postgres", "postgresql");
        let initdb = get("initdb", "postgresql");
        let pg_basebackup = get("pg_basebackup", "postgresql-client");
        let pg_isready = get("pg_isready", "postgresql-client");
        let psql = get("psql", "postgresql-client");
        let pgbouncer = get("pgbouncer", "pgbouncer");
        let redis_server = get("redis-server", "redis-server");
        let redis_sentinel = get("redis-sentinel", "redis-sentinel");
        let redis_cli = get("redis-cli", "redis-tools");
        let haproxy = get("haproxy", "haproxy");
        let pgbackrest = get("pgbackrest", "pgbackrest");
        if !missing.is_empty() {
            bail!("{}", missing.join("\n"));
        }
        let postgres_major = numbers_after(&version_output(&postgres)?, "(PostgreSQL) ")
            .first()
            .copied()
            .unwrap_or(0);
        let pgbouncer_minor = numbers_after(&version_output(&pgbouncer)?, "PgBouncer ")
            .get(1)
            .copied()
            .unwrap_or(0);
        let redis_major = numbers_after(&version_output(&redis_server)?, "v=")
            .first()
            .copied()
            .unwrap_or(0);
        let postgres_bin = postgres
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf);
        Ok(Tools {
            postgres_bin,
            postgres,
            initdb,
            pg_basebackup,
            pg_isready,
            psql,
            pgbouncer,
            redis_server,
            redis_sentinel,
            redis_cli,
            haproxy,
            pgbackrest,
            postgres_major,
            pgbouncer_minor,
            redis_major,
        })
    }
}

/// What `up --native --monitoring` runs besides the servers.
#[derive(Clone, Debug)]
pub struct MonitorTools {
    pub prometheus: PathBuf,
    pub postgres_exporter: PathBuf,
    pub redis_exporter: PathBuf,
    pub pgbouncer_exporter: PathBuf,
}

impl MonitorTools {
    pub fn find() -> anyhow::Result<MonitorTools> {
        let mut missing = Vec::new();
        let mut get = |name: &str, package: &str| match find(name, package, None) {
            Ok(p) => p,
            Err(e) => {
                missing.push(e.to_string());
                PathBuf::new()
            }
        };
        let prometheus = get("prometheus", "prometheus");
        let postgres_exporter = get(
            "prometheus-postgres-exporter",
            "prometheus-postgres-exporter",
        );
        let redis_exporter = get("prometheus-redis-exporter", "prometheus-redis-exporter");
        let pgbouncer_exporter = match on_path("pgbouncer-exporter") {
            Some(p) => p,
            None => {
                missing.push(
                    "`pgbouncer-exporter` is not installed: pip install --no-deps -r out/<phase>/compose/monitoring/pgbouncer-exporter.txt (in a virtualenv on PATH); Debian's prometheus-pgbouncer-exporter predates PgBouncer 1.8's SHOW STATS".to_owned(),
                );
                PathBuf::new()
            }
        };
        if !missing.is_empty() {
            bail!("{}", missing.join("\n"));
        }
        Ok(MonitorTools {
            prometheus,
            postgres_exporter,
            redis_exporter,
            pgbouncer_exporter,
        })
    }
}

impl Tools {
    /// PATH for the generated scripts: PostgreSQL's binaries first, then
    /// the caller's PATH.
    pub fn path(&self) -> String {
        let inherited = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        format!("{}:{inherited}", self.postgres_bin.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_version_banners() {
        assert_eq!(
            numbers_after(
                "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
                "(PostgreSQL) "
            ),
            [15, 18]
        );
        assert_eq!(
            numbers_after("PgBouncer 1.18.0\nlibevent 2.1.12", "PgBouncer "),
            [1, 18, 0]
        );
        assert_eq!(
            numbers_after("Redis server v=7.0.15 sha=00000000:0", "v="),
            [7, 0, 15]
        );
        assert!(numbers_after("nothing", "v=").is_empty());
    }
}

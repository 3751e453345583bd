//! The layout of the generated files, typed: render writes every file of
//! a target at the path given here, and native reads each from the same
//! path under its copy of the target's directory, so the two never agree
//! by spelling a string twice.

use super::target::Target;

/// The parts of a target's directory a migration installs one at a time:
/// each a directory (or a file) directly under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Postgres,
    Pgbouncer,
    Proxy,
    Redis,
    AppEnv,
    Monitoring,
}

impl Part {
    pub fn rel(self) -> &'static str {
        match self {
            Part::Postgres => "postgres",
            Part::Pgbouncer => "pgbouncer",
            Part::Proxy => "haproxy",
            Part::Redis => "redis",
            Part::AppEnv => APP_ENV,
            Part::Monitoring => "monitoring",
        }
    }
}

/// The app's contract with its values as a target renders them; `up
/// --native` writes the filled-in copy of the same name in its state
/// directory.
pub const APP_ENV: &str = "app.env";

/// Compose with a standalone Redis: the contract for an app run on the
/// machine, on the published ports (`up` fills in the secrets in its
/// state directory's copy).
pub const HOST_APP_ENV: &str = "app.host.env";

/// A file of a target's directory (out/<phase>/<target>/...). Node files
/// take the node's name.
#[derive(Clone, Copy, Debug)]
pub enum TargetFile<'a> {
    PostgresConf(&'a str),
    PgHba(&'a str),
    StandbyStart(&'a str),
    InitRolesSql,
    /// pgBackRest's settings (targets that archive WAL through it).
    PgbackrestConf,
    PgbouncerIni(&'a str),
    RedisConf(&'a str),
    SentinelConf(&'a str),
    RedisStart,
    ClusterCreate,
    Haproxy,
    AppEnv,
    Prometheus,
    Rules,
    PgbouncerExporter,
    PgbouncerExporterRequirements,
    GrafanaDashboard,
    GrafanaDatasource,
    GrafanaDashboards,
    /// Compose only.
    ComposeFile,
    EnvExample,
    HostAppEnv,
    PrimaryStart,
    PgbouncerStart,
    Edge,
    /// The phase's scaling.json, beside the Compose file (its workloads
    /// mount it).
    Scaling,
    PgbouncerExporterStart,
    /// An image family's Dockerfile (`images: debian`), and the exporter's
    /// requirements in its build context.
    Dockerfile(&'a str),
    ExporterBuildRequirements,
}

impl TargetFile<'_> {
    /// The path inside the target's directory.
    pub fn rel(self) -> String {
        let in_part = |part: Part, rest: &str| format!("{}/{rest}", part.rel());
        match self {
            TargetFile::PostgresConf(n) => in_part(Part::Postgres, &format!("{n}/postgresql.conf")),
            TargetFile::PgHba(n) => in_part(Part::Postgres, &format!("{n}/pg_hba.conf")),
            TargetFile::StandbyStart(n) => {
                in_part(Part::Postgres, &format!("{n}/standby-start.sh"))
            }
            TargetFile::InitRolesSql => in_part(Part::Postgres, "init-roles.sql"),
            TargetFile::PgbackrestConf => in_part(Part::Postgres, "pgbackrest.conf"),
            TargetFile::PrimaryStart => in_part(Part::Postgres, "primary-start.sh"),
            TargetFile::PgbouncerIni(n) => in_part(Part::Pgbouncer, &format!("{n}/pgbouncer.ini")),
            TargetFile::PgbouncerStart => in_part(Part::Pgbouncer, "start.sh"),
            TargetFile::RedisConf(n) => in_part(Part::Redis, &format!("{n}/redis.conf")),
            TargetFile::SentinelConf(n) => in_part(Part::Redis, &format!("{n}/sentinel.conf")),
            TargetFile::RedisStart => in_part(Part::Redis, "start.sh"),
            TargetFile::ClusterCreate => in_part(Part::Redis, "cluster-create.sh"),
            TargetFile::Haproxy => in_part(Part::Proxy, "haproxy.cfg"),
            TargetFile::Edge => in_part(Part::Proxy, "edge.cfg"),
            TargetFile::Scaling => PhaseFile::Scaling.rel().to_owned(),
            TargetFile::AppEnv => APP_ENV.to_owned(),
            TargetFile::Prometheus => in_part(Part::Monitoring, "prometheus.yml"),
            TargetFile::Rules => in_part(Part::Monitoring, "rules.yml"),
            TargetFile::PgbouncerExporter => in_part(Part::Monitoring, "pgbouncer-exporter.yml"),
            TargetFile::PgbouncerExporterRequirements => {
                in_part(Part::Monitoring, "pgbouncer-exporter.txt")
            }
            TargetFile::GrafanaDashboard => {
                in_part(Part::Monitoring, "grafana/dashboards/scaleplan.json")
            }
            TargetFile::GrafanaDatasource => in_part(
                Part::Monitoring,
                "grafana/provisioning/datasources/prometheus.yml",
            ),
            TargetFile::GrafanaDashboards => in_part(
                Part::Monitoring,
                "grafana/provisioning/dashboards/scaleplan.yml",
            ),
            TargetFile::PgbouncerExporterStart => {
                in_part(Part::Monitoring, "pgbouncer-exporter-start.sh")
            }
            TargetFile::Dockerfile(family) => format!("images/{family}/Dockerfile"),
            TargetFile::ExporterBuildRequirements => {
                "images/pgbouncer-exporter/pgbouncer-exporter.txt".to_owned()
            }
            TargetFile::ComposeFile => "docker-compose.yml".to_owned(),
            TargetFile::EnvExample => ".env.example".to_owned(),
            TargetFile::HostAppEnv => HOST_APP_ENV.to_owned(),
        }
    }

    /// The path under out/<phase>/: the target's directory, then `rel`.
    pub fn of(self, target: Target) -> String {
        format!("{}/{}", target.dir(), self.rel())
    }
}

/// Files of a phase's directory that belong to no target.
#[derive(Clone, Copy, Debug)]
pub enum PhaseFile {
    Readme,
    Architecture,
    LoadTest,
    Rules,
    RuleTests,
    Dashboard,
    /// The phase and its capacity for the app's ScalingModule.
    Scaling,
}

impl PhaseFile {
    pub fn rel(self) -> &'static str {
        match self {
            PhaseFile::Readme => "README.md",
            PhaseFile::Architecture => "architecture.mmd",
            PhaseFile::LoadTest => "loadtest/k6.js",
            PhaseFile::Rules => "monitoring/rules.yml",
            PhaseFile::RuleTests => "monitoring/rules.test.yml",
            PhaseFile::Dashboard => "monitoring/dashboard.json",
            PhaseFile::Scaling => "scaling.json",
        }
    }
}

/// The directory under out/ holding the plans between phases.
pub const TRANSITIONS: &str = "transitions";

/// A file of out/transitions/.
#[derive(Clone, Copy, Debug)]
pub enum TransitionFile<'a> {
    /// The plan from one phase to the next, as Markdown.
    Note {
        from: &'a str,
        to: &'a str,
    },
    /// Its steps as a Mermaid flowchart.
    Flow {
        from: &'a str,
        to: &'a str,
    },
    Roadmap,
    Readme,
}

impl TransitionFile<'_> {
    /// The path inside out/transitions/.
    pub fn rel(self) -> String {
        match self {
            TransitionFile::Note { from, to } => format!("{from}-to-{to}.md"),
            TransitionFile::Flow { from, to } => format!("{from}-to-{to}.mmd"),
            TransitionFile::Roadmap => "roadmap.mmd".to_owned(),
            TransitionFile::Readme => "README.md".to_owned(),
        }
    }

    /// The path as a user in the project's root finds it.
    pub fn in_out(self) -> String {
        format!("out/{TRANSITIONS}/{}", self.rel())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node file lies in the part a migration installs for it.
    #[test]
    fn node_files_lie_in_their_parts() {
        for (file, part) in [
            (TargetFile::PostgresConf("n"), Part::Postgres),
            (TargetFile::StandbyStart("n"), Part::Postgres),
            (TargetFile::PgbouncerIni("n"), Part::Pgbouncer),
            (TargetFile::RedisConf("n"), Part::Redis),
            (TargetFile::SentinelConf("n"), Part::Redis),
            (TargetFile::Haproxy, Part::Proxy),
            (TargetFile::AppEnv, Part::AppEnv),
        ] {
            assert!(file.rel().starts_with(part.rel()), "{file:?}");
        }
        assert_eq!(
            TargetFile::PgbouncerIni("pgbouncer-1").of(Target::Local { base_port: 1 }),
            "local/pgbouncer/pgbouncer-1/pgbouncer.ini"
        );
    }
}

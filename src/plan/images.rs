//! Where each Compose service's image comes from: pulled (the components'
//! published images) or built from Debian's packages
//! (`targets.compose.images: debian`). Either way every service starts
//! through scaleplan's own entrypoint, so the two Compose files differ in
//! their `image:` and `build:` lines only.

use crate::spec::images::{pgbouncer_image, postgres_image, redis_image};
use crate::spec::types::{ImageSource, Phase};
use serde::Serialize;

pub use crate::spec::images::{DEBIAN_BASE, DEBIAN_RELEASE};

/// A family of images: the services that run one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Postgres,
    Pgbouncer,
    Redis,
    Haproxy,
    Prometheus,
    PostgresExporter,
    RedisExporter,
    PgbouncerExporter,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Postgres,
        Family::Pgbouncer,
        Family::Redis,
        Family::Haproxy,
        Family::Prometheus,
        Family::PostgresExporter,
        Family::RedisExporter,
        Family::PgbouncerExporter,
    ];

    /// Its directory under compose/images/, and its image's name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Postgres => "postgres",
            Family::Pgbouncer => "pgbouncer",
            Family::Redis => "redis",
            Family::Haproxy => "haproxy",
            Family::Prometheus => "prometheus",
            Family::PostgresExporter => "postgres-exporter",
            Family::RedisExporter => "redis-exporter",
            Family::PgbouncerExporter => "pgbouncer-exporter",
        }
    }
}

/// One service's image.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceImage {
    Pull {
        image: String,
    },
    /// Built by Compose from `context` (relative to the Compose file) and
    /// tagged `image`, which every service of the family shares; `args`
    /// are build arguments from the environment.
    Build {
        context: String,
        image: String,
        args: Vec<(&'static str, String)>,
    },
}

/// The image of each family of a phase's Compose services.
#[derive(Clone, Debug, Serialize)]
pub struct ComposeImages {
    pub source: ImageSource,
    pub postgres: ServiceImage,
    pub pgbouncer: ServiceImage,
    pub redis: ServiceImage,
    pub haproxy: ServiceImage,
    pub prometheus: ServiceImage,
    pub postgres_exporter: ServiceImage,
    pub redis_exporter: ServiceImage,
    pub pgbouncer_exporter: ServiceImage,
    /// Grafana is not packaged by Debian: always the published image,
    /// behind a Compose profile (`dashboards`) so a machine without Docker
    /// Hub never needs it.
    pub grafana: String,
}

/// The published images of the families without a version in the spec:
/// the versions Debian 12 ships, so the rules and tests read the same
/// metric names on every target.
const HAPROXY: &str = "haproxy:2.6-bookworm";
const PROMETHEUS: &str = "prom/prometheus:v2.42.0";
const POSTGRES_EXPORTER: &str = "quay.io/prometheuscommunity/postgres-exporter:v0.11.1";
/// The alpine build: the plain one has no shell or wget for a health check.
const REDIS_EXPORTER: &str = "oliver006/redis_exporter:v1.45.0-alpine";
const PYTHON: &str = "python:3.11-slim-bookworm";
const GRAFANA: &str = "grafana/grafana:10.4.2";

pub fn plan(phase: &Phase) -> ComposeImages {
    let source = phase.targets.compose.images;
    let pick = |family: Family, official: String| match source {
        ImageSource::Official => ServiceImage::Pull { image: official },
        ImageSource::Debian => ServiceImage::Build {
            context: format!("./images/{}", family.name()),
            image: format!("scaleplan/{}:{DEBIAN_RELEASE}", family.name()),
            args: recipe(family)
                .args
                .iter()
                .map(|(arg, var)| (*arg, format!("${{{var}:-}}")))
                .collect(),
        },
    };
    let pgb = &phase.pgbouncer;
    let pgbouncer = pgb
        .image
        .as_ref()
        .map(|i| i.as_str().to_owned())
        .or_else(|| pgbouncer_image(pgb.version.minor()).map(str::to_owned))
        .unwrap_or_default();
    // PostgreSQL archives its WAL through pgBackRest (postgres.backup),
    // which the official image does not carry: built from it with the
    // PostgreSQL project's own package (its apt repository is configured in
    // the image).
    let postgres = match source {
        ImageSource::Official => ServiceImage::Build {
            context: format!("./images/{}", Family::Postgres.name()),
            image: format!(
                "scaleplan/postgres-pgbackrest:{}",
                postgres_image(phase.postgres.version)
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
            ),
            args: Vec::new(),
        },
        ImageSource::Debian => pick(Family::Postgres, String::new()),
    };
    ComposeImages {
        source,
        postgres,
        pgbouncer: pick(Family::Pgbouncer, pgbouncer),
        redis: pick(Family::Redis, redis_image(phase.redis.version)),
        haproxy: pick(Family::Haproxy, HAPROXY.to_owned()),
        prometheus: pick(Family::Prometheus, PROMETHEUS.to_owned()),
        postgres_exporter: pick(Family::PostgresExporter, POSTGRES_EXPORTER.to_owned()),
        redis_exporter: pick(Family::RedisExporter, REDIS_EXPORTER.to_owned()),
        pgbouncer_exporter: pick(Family::PgbouncerExporter, PYTHON.to_owned()),
        grafana: GRAFANA.to_owned(),
    }
}

/// How an image of the `debian` source is built: Debian's packages, and
/// the paths the Compose file's entrypoints use on the official image
/// made here too. Rendered as compose/images/<family>/Dockerfile.
#[derive(Clone, Debug, Serialize)]
pub struct Recipe {
    pub family: Family,
    /// The program and version, for the file's comment.
    pub what: String,
    /// Built on the published image (`official` source) rather than on
    /// Debian's.
    pub official: bool,
    pub base: String,
    pub release: &'static str,
    /// Build-context files copied in first (`SOURCE DEST`).
    pub copy: Vec<&'static str>,
    /// Build arguments (empty by default) and the environment variable
    /// Compose fills each from.
    pub args: Vec<(&'static str, &'static str)>,
    /// Shell commands before the packages are installed.
    pub before: Vec<&'static str>,
    pub packages: Vec<&'static str>,
    /// Shell commands after.
    pub after: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    pub workdir: Option<&'static str>,
    /// The user the official image runs as.
    pub user: &'static str,
}

/// The PATH of Debian's images; PostgreSQL's server binaries are not on it.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The build argument that carries an extra CA certificate, and the
/// environment variable Compose fills it from.
pub const EXTRA_CA_ARG: &str = "EXTRA_CA_CERT";
pub const EXTRA_CA_VAR: &str = "SCALEPLAN_EXTRA_CA_CERT";

/// The official PostgreSQL image with pgBackRest added: the one image the
/// `official` source builds.
pub fn official_postgres(version: u8) -> Recipe {
    Recipe {
        family: Family::Postgres,
        what: format!("PostgreSQL {version} (the official image) with pgBackRest"),
        official: true,
        base: postgres_image(version),
        release: "",
        copy: Vec::new(),
        args: Vec::new(),
        before: Vec::new(),
        packages: vec!["pgbackrest"],
        after: Vec::new(),
        env: Vec::new(),
        workdir: None,
        user: "postgres",
    }
}

pub fn recipe(family: Family) -> Recipe {
    let pg = crate::spec::images::DEBIAN_POSTGRES;
    let mut r = Recipe {
        family,
        what: String::new(),
        official: false,
        base: DEBIAN_BASE.to_owned(),
        release: DEBIAN_RELEASE,
        copy: Vec::new(),
        args: Vec::new(),
        before: Vec::new(),
        packages: Vec::new(),
        after: Vec::new(),
        env: Vec::new(),
        workdir: None,
        user: "nobody",
    };
    match family {
        Family::Postgres => {
            r.what = format!("PostgreSQL {pg}");
            // The package would create and start a cluster of its own.
            r.before = vec![
                "mkdir -p /etc/postgresql-common/createcluster.d",
                "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/scaleplan.conf",
            ];
            // pgBackRest: the WAL archive and backups (postgres.backup).
            r.packages = vec!["postgresql-17", "postgresql-client-17", "pgbackrest"];
            r.after = vec![
                "mkdir -p /var/lib/postgresql/data /var/run/postgresql".to_owned(),
                "chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql".to_owned(),
            ];
            r.env = vec![("PATH", format!("/usr/lib/postgresql/{pg}/bin:{PATH}"))];
            r.user = "postgres";
        }
        Family::Pgbouncer => {
            r.what = format!("PgBouncer {}", crate::spec::images::DEBIAN_PGBOUNCER);
            // nc for the health check, as the official image's busybox has.
            r.packages = vec!["pgbouncer", "netcat-openbsd"];
            r.user = "postgres";
        }
        Family::Redis => {
            r.what = format!("Redis {}", crate::spec::images::DEBIAN_REDIS);
            r.packages = vec!["redis-server", "redis-sentinel", "redis-tools"];
            r.after = vec![
                "mkdir -p /data".to_owned(),
                "chown redis:redis /data".to_owned(),
            ];
            r.workdir = Some("/data");
            r.user = "redis";
        }
        Family::Haproxy => {
            r.what = "HAProxy".to_owned();
            r.packages = vec!["haproxy"];
            r.after = vec!["mkdir -p /usr/local/etc/haproxy".to_owned()];
            r.user = "haproxy";
        }
        Family::Prometheus => {
            r.what = "Prometheus".to_owned();
            r.packages = vec!["prometheus", "wget"];
            r.after = vec![
                "mkdir -p /prometheus /etc/prometheus".to_owned(),
                "chown nobody:nogroup /prometheus".to_owned(),
            ];
        }
        Family::PostgresExporter => {
            r.what = "postgres_exporter".to_owned();
            r.packages = vec!["prometheus-postgres-exporter", "wget"];
            // The official image's path.
            r.after = vec![
                "ln -s /usr/bin/prometheus-postgres-exporter /usr/bin/postgres_exporter".to_owned(),
            ];
        }
        Family::RedisExporter => {
            r.what = "redis_exporter".to_owned();
            r.packages = vec!["prometheus-redis-exporter", "wget"];
            r.after = vec!["ln -s /usr/bin/prometheus-redis-exporter /redis_exporter".to_owned()];
        }
        Family::PgbouncerExporter => {
            r.what = "the PgBouncer exporter (PyPI, pinned)".to_owned();
            r.copy = vec!["pgbouncer-exporter.txt /etc/scaleplan/pgbouncer-exporter.txt"];
            // The one image that reaches beyond Debian's mirror (PyPI): a
            // network that intercepts TLS gives its CA certificate (PEM)
            // in SCALEPLAN_EXTRA_CA_CERT, which the build trusts.
            r.args = vec![(EXTRA_CA_ARG, EXTRA_CA_VAR)];
            r.packages = vec!["python3", "python3-venv", "ca-certificates"];
            r.after = vec![
                format!(
                    "if [ -n \"${EXTRA_CA_ARG}\" ]; then printf '%s\\n' \"${EXTRA_CA_ARG}\" > /usr/local/share/ca-certificates/extra.crt && update-ca-certificates; fi"
                ),
                "python3 -m venv /opt/exporter".to_owned(),
                "/opt/exporter/bin/pip install --no-cache-dir --disable-pip-version-check --cert /etc/ssl/certs/ca-certificates.crt --no-deps -r /etc/scaleplan/pgbouncer-exporter.txt".to_owned(),
            ];
            r.env = vec![("PATH", format!("/opt/exporter/bin:{PATH}"))];
        }
    }
    r
}

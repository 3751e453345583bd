//! The template registry: every template is embedded in the binary under
//! its path in templates/, so the binary works anywhere; `--templates DIR`
//! replaces any of them with a file of the same path under DIR.

use anyhow::Context;
use std::path::Path;

macro_rules! registry {
    ($($const:ident = $path:literal;)*) => {
        $(pub const $const: &str = $path;)*

        /// (name, embedded source) of every template.
        pub const ALL: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../../templates/", $path))),)*
        ];
    };
}

registry! {
    POSTGRESQL_CONF = "postgres/postgresql.conf";
    PG_HBA_CONF = "postgres/pg_hba.conf";
    INIT_ROLES_SQL = "postgres/init-roles.sql";
    PRIMARY_START_SH = "postgres/primary-start.sh";
    RDS_BOOTSTRAP_SQL = "postgres/rds-bootstrap.sql";
    STANDBY_START_SH = "postgres/standby-start.sh";
    PGBACKREST_CONF = "postgres/pgbackrest.ini";
    PGBOUNCER_INI = "pgbouncer/pgbouncer.ini";
    PGBOUNCER_START_SH = "pgbouncer/start.sh";
    REDIS_CONF = "redis/redis.conf";
    SENTINEL_CONF = "redis/sentinel.conf";
    REDIS_START_SH = "redis/start.sh";
    CLUSTER_CREATE_SH = "redis/cluster-create.sh";
    DOCKER_COMPOSE_YML = "compose/docker-compose.yml";
    ENV_EXAMPLE = "compose/env.example";
    DOCKERFILE = "compose/images/Dockerfile";
    PHASE_README = "docs/phase-readme.md";
    TRANSITION_NOTE = "docs/transition.md";
    ROADMAP = "docs/roadmap.md";
    TF_VERSIONS = "terraform/versions.tf";
    TF_VARIABLES = "terraform/variables.tf";
    TF_MAIN = "terraform/main.tf";
    TF_OUTPUTS = "terraform/outputs.tf";
    TF_README = "terraform/README.md";
    TF_TEST = "terraform/tests/variables.tftest.hcl";
    TF_SECRETS = "terraform/secrets.tf";
    TF_NETWORK = "terraform/network.tf";
    TF_REGION_VERSIONS = "terraform/modules/region/versions.tf";
    TF_REGION_VARIABLES = "terraform/modules/region/variables.tf";
    TF_REGION_SECURITY = "terraform/modules/region/security.tf";
    TF_REGION_EDGE = "terraform/modules/region/edge.tf";
    TF_REGION_BOOTSTRAP = "terraform/modules/region/bootstrap.tf";
    TF_REGION_README = "terraform/modules/region/README.md";
    TF_REGION_POSTGRES = "terraform/modules/region/postgres.tf";
    TF_REGION_REDIS = "terraform/modules/region/redis.tf";
    TF_REGION_SERVICES = "terraform/modules/region/services.tf";
    TF_REGION_OUTPUTS = "terraform/modules/region/outputs.tf";
    TF_REGION_ALARMS = "terraform/modules/region/alarms.tf";
    K6_JS = "loadtest/k6.js";
    HAPROXY_CFG = "haproxy/haproxy.cfg";
    EDGE_CFG = "haproxy/edge.cfg";
    APP_ENV = "app/app.env";
    PROMETHEUS_RULES = "monitoring/rules.yml";
    PROMETHEUS_RULES_TEST = "monitoring/rules.test.yml";
    PROMETHEUS_YML = "monitoring/prometheus.yml";
    PGBOUNCER_EXPORTER_YML = "monitoring/pgbouncer-exporter.yml";
    PGBOUNCER_EXPORTER_START_SH = "monitoring/pgbouncer-exporter-start.sh";
    GRAFANA_DATASOURCE = "monitoring/grafana-datasource.yml";
    GRAFANA_DASHBOARDS = "monitoring/grafana-dashboards.yml";
}

/// The sources to use: embedded ones, each replaced by DIR/name when an
/// override directory is given and holds that file.
pub fn sources(overrides: Option<&Path>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut out = Vec::with_capacity(ALL.len());
    for (name, embedded) in ALL {
        let source = match overrides.map(|dir| dir.join(name)) {
            Some(path) if path.is_file() => std::fs::read_to_string(&path)
                .with_context(|| format!("reading template override {}", path.display()))?,
            _ => (*embedded).to_owned(),
        };
        out.push((*name, source));
    }
    Ok(out)
}

//! Names every target shares: the database roles scaleplan creates and the
//! environment variables that carry their secrets. Templates, the native
//! bring-up and the tests all take them from here.

use serde::Serialize;

/// The PostgreSQL superuser (local maintenance only).
pub const SUPERUSER: &str = "postgres";
/// The role standbys stream as.
pub const REPLICATION_USER: &str = "replicator";
/// PgBouncer's admin console user (SHOW POOLS, SHOW CONFIG, RELOAD).
pub const ADMIN_USER: &str = "pgbouncer_admin";

/// A secret a deployment needs at bring-up. Its value never reaches a
/// generated file: it comes from the environment (or Secrets Manager), and
/// only its variable's name is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    Postgres,
    AppDb,
    Replication,
    PgbouncerAdmin,
    Redis,
}

impl Secret {
    pub const ALL: [Secret; 5] = [
        Secret::Postgres,
        Secret::AppDb,
        Secret::Replication,
        Secret::PgbouncerAdmin,
        Secret::Redis,
    ];

    /// The environment variable that carries it.
    pub const fn var(self) -> &'static str {
        match self {
            Secret::Postgres => "SCALEPLAN_POSTGRES_PASSWORD",
            Secret::AppDb => "SCALEPLAN_APP_DB_PASSWORD",
            Secret::Replication => "SCALEPLAN_REPLICATION_PASSWORD",
            Secret::PgbouncerAdmin => "SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD",
            Secret::Redis => "SCALEPLAN_REDIS_PASSWORD",
        }
    }
}

/// The secret variables' names as templates see them.
#[derive(Clone, Debug, Serialize)]
pub struct SecretVars {
    pub postgres: &'static str,
    pub app_db: &'static str,
    pub replication: &'static str,
    pub pgbouncer_admin: &'static str,
    pub redis: &'static str,
}

pub const SECRET_VARS: SecretVars = SecretVars {
    postgres: Secret::Postgres.var(),
    app_db: Secret::AppDb.var(),
    replication: Secret::Replication.var(),
    pgbouncer_admin: Secret::PgbouncerAdmin.var(),
    redis: Secret::Redis.var(),
};

/// The roles as templates see them.
#[derive(Clone, Debug, Serialize)]
pub struct Roles {
    pub superuser: &'static str,
    pub replication: &'static str,
    pub admin: &'static str,
}

pub const ROLES: Roles = Roles {
    superuser: SUPERUSER,
    replication: REPLICATION_USER,
    admin: ADMIN_USER,
};

/// Grafana's admin password, which only the Compose target needs (the
/// local target runs no Grafana).
pub const GRAFANA_ADMIN_VAR: &str = "SCALEPLAN_GRAFANA_ADMIN_PASSWORD";

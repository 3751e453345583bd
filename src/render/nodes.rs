//! The config files of every node, for any target: postgresql.conf and
//! pg_hba.conf, pgbouncer.ini, redis.conf and sentinel.conf.

use super::artifacts::Artifacts;
use super::auth;
use super::notice::Generated;
use super::templates as t;
use super::{Renderer, generated};
use crate::plan::PlannedPhase;
use crate::plan::contract;
use crate::plan::identity::{ADMIN_USER, REPLICATION_USER, SUPERUSER};
use crate::plan::layout::TargetFile;
use crate::plan::redisconf::{self, RedisConf};
use crate::plan::target::Target;
use crate::plan::topology::{self, PostgresNode, RedisLayout, RedisNode, Topology};
use crate::spec::types::RegionRole;
use anyhow::Context;
use minijinja::context;
use serde::Serialize;

impl Renderer {
    /// The files of one target, keyed by their path under out/<phase>/.
    pub fn render_target(
        &self,
        phase: &PlannedPhase,
        target: Target,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = phase.spec();
        let generated = generated(phase);
        let topo = phase.topology(target);
        let secondary: Vec<&str> = spec
            .regions
            .iter()
            .filter(|r| r.role == RegionRole::Secondary)
            .map(|r| r.name.as_str())
            .collect();
        self.render_nodes(topo, &generated, files)
            .and_then(|()| match target {
                Target::Compose => self.render_compose_only(topo, &secondary, &generated, files),
                Target::Local { .. } => self.render_local_edge(topo, &generated, files),
                Target::Cloud => Ok(()),
            })
            .and_then(|()| match target {
                Target::Compose | Target::Local { .. } => {
                    self.render_target_monitoring(phase, topo, files)
                }
                Target::Cloud => Ok(()),
            })
            .and_then(|()| {
                if target == Target::Compose {
                    files.insert(TargetFile::Scaling.of(target), self.scaling_file(phase)?);
                }
                Ok(())
            })
            .with_context(|| format!("phase {}, {} target", spec.name, target.dir()))
    }

    /// The local target's HTTP edge: HAProxy in front of the app's
    /// replicas, each on its own port.
    fn render_local_edge(
        &self,
        topo: &Topology,
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let Some(local) = &topo.app.local else {
            anyhow::bail!("no local edge planned");
        };
        files.insert(
            TargetFile::Edge.of(topo.target),
            self.render(
                t::EDGE_CFG,
                g,
                context! {
                    app => minijinja::Value::from(minijinja::value::Serde(&topo.app)),
                    local => minijinja::Value::from(minijinja::value::Serde(local)),
                },
            )?,
        );
        Ok(())
    }

    /// Config files of every node: the same templates for every target,
    /// with the target's addresses and paths.
    pub(super) fn render_nodes(
        &self,
        topo: &Topology,
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let layout = topo.target;
        let pg = &topo.postgres;
        let nodes: Vec<(&PostgresNode, &str)> = std::iter::once((&pg.primary, "primary"))
            .chain(pg.replicas.iter().map(|r| (r, "standby")))
            .collect();
        for (node, role) in &nodes {
            files.insert(
                TargetFile::PostgresConf(&node.name).of(layout),
                self.render(
                    t::POSTGRESQL_CONF,
                    g,
                    PgConfCtx {
                        role,
                        node,
                        postgres: pg,
                        listen_address: layout.listen(),
                        hba_path: layout.hba_path(),
                        socket_dir: match (&pg.backup.archive, layout) {
                            (Some(_), Target::Local { .. }) => None,
                            _ => layout.socket_dir(),
                        },
                        socket_on_command_line: pg.backup.archive.is_some()
                            && matches!(layout, Target::Local { .. }),
                    },
                )?,
            );
            files.insert(
                TargetFile::PgHba(&node.name).of(layout),
                self.render(
                    t::PG_HBA_CONF,
                    g,
                    HbaCtx {
                        postgres: pg,
                        superuser: SUPERUSER,
                        replication_user: REPLICATION_USER,
                        client_network: layout.client_network(),
                        exporter_network: layout.exporter_network(),
                    },
                )?,
            );
        }
        files.insert(
            TargetFile::InitRolesSql.of(layout),
            self.render(t::INIT_ROLES_SQL, g, context! {})?,
        );
        if pg.backup.archive.is_some() {
            files.insert(
                TargetFile::PgbackrestConf.of(layout),
                self.render(
                    t::PGBACKREST_CONF,
                    g,
                    context! {
                        postgres => minijinja::Value::from(minijinja::value::Serde(pg)),
                        compose => layout == Target::Compose,
                    },
                )?,
            );
        }
        for node in &topo.pgbouncer.instances {
            files.insert(
                TargetFile::PgbouncerIni(&node.name).of(layout),
                self.pgbouncer_ini(topo, node, g)?,
            );
        }
        let redis = &topo.redis;
        // The queue Redis runs from the same redis.conf as a standalone node.
        let queue_layout = topo.queue_redis.as_ref().map(|q| q.layout());
        let data_nodes = redis.data_nodes().into_iter().map(|n| (redis, n));
        let queue_node = queue_layout
            .iter()
            .zip(topo.queue_redis.iter())
            .map(|(l, q)| (l, &q.node));
        for (redis, node) in data_nodes.chain(queue_node) {
            files.insert(
                TargetFile::RedisConf(&node.name).of(layout),
                self.render(
                    t::REDIS_CONF,
                    g,
                    RedisConfCtx {
                        node,
                        redis,
                        bind: layout.listen_ipv4(),
                        data_dir: &layout.redis_dir(&node.name),
                        auth_include: layout.redis_auth(),
                        conf: redisconf::plan(redis, node, layout),
                    },
                )?,
            );
        }
        for node in &pg.replicas {
            files.insert(
                TargetFile::StandbyStart(&node.name).of(layout),
                self.render(
                    t::STANDBY_START_SH,
                    g,
                    StandbyCtx {
                        target: layout,
                        node,
                        primary: &pg.primary,
                        archive: pg.backup.archive.is_some(),
                    },
                )?,
            );
        }
        files.insert(
            TargetFile::RedisStart.of(layout),
            self.render(
                t::REDIS_START_SH,
                g,
                RedisStartCtx {
                    target: layout,
                    auth_include: layout.redis_auth(),
                    sentinel_auth: match redis {
                        RedisLayout::Sentinel { master_name, .. } => {
                            Some(auth::printf_format(&auth::sentinel_auth(master_name, "%s")))
                        }
                        _ => None,
                    },
                },
            )?,
        );
        files.insert(
            TargetFile::Haproxy.of(layout),
            self.render(
                t::HAPROXY_CFG,
                g,
                ProxyCtx {
                    target: layout,
                    proxy: &topo.proxy,
                    pgbouncer: &topo.pgbouncer,
                    postgres: pg,
                    listen: layout.listen_ipv4(),
                    startup_hex: startup_hex(&pg.user, &pg.database),
                },
            )?,
        );
        files.insert(
            TargetFile::AppEnv.of(layout),
            self.render(
                t::APP_ENV,
                g,
                AppEnvCtx {
                    contract: contract::vars(topo),
                    on_host: false,
                },
            )?,
        );
        if let RedisLayout::Cluster { .. } = redis {
            files.insert(
                TargetFile::ClusterCreate.of(layout),
                self.render(t::CLUSTER_CREATE_SH, g, ClusterCtx { redis })?,
            );
        }
        if let RedisLayout::Sentinel {
            sentinels, nodes, ..
        } = redis
        {
            for node in sentinels {
                files.insert(
                    TargetFile::SentinelConf(&node.name).of(layout),
                    self.render(
                        t::SENTINEL_CONF,
                        g,
                        SentinelCtx {
                            node,
                            master: &nodes[0],
                            redis,
                            bind: layout.listen_ipv4(),
                            data_dir: &layout.redis_dir(&node.name),
                            auth_include: layout.redis_auth(),
                        },
                    )?,
                );
            }
        }
        Ok(())
    }
}

impl Renderer {
    /// One PgBouncer instance's pgbouncer.ini, for any target: the cloud's
    /// ECS tasks run the same file as Compose and the local target.
    pub(super) fn pgbouncer_ini(
        &self,
        topo: &Topology,
        node: &topology::PgbouncerNode,
        g: &Generated,
    ) -> anyhow::Result<String> {
        let target = topo.target;
        self.render(
            t::PGBOUNCER_INI,
            g,
            PgbouncerCtx {
                target,
                node,
                pgbouncer: &topo.pgbouncer,
                postgres: &topo.postgres,
                listen_address: target.listen_ipv4(),
                auth_file: &target.pgbouncer_auth_file(&node.name),
                admin_user: ADMIN_USER,
                socket_dir: target.socket_dir(),
            },
        )
    }
}

/// A PostgreSQL StartupMessage (protocol 3.0) for `user` on `database`,
/// in hex, for the proxy's health checks: a server that answers it with an
/// authentication request ('R') accepts connections.
fn startup_hex(user: &str, database: &str) -> String {
    let mut body = vec![0, 3, 0, 0];
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    message.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
struct ProxyCtx<'a> {
    target: Target,
    proxy: &'a topology::PgProxy,
    pgbouncer: &'a topology::PgbouncerTier,
    postgres: &'a topology::PostgresCluster,
    listen: &'a str,
    startup_hex: String,
}

#[derive(Serialize)]
struct AppEnvCtx {
    contract: Vec<contract::Var>,
    /// The variant for an app on the machine (Compose's app.host.env).
    on_host: bool,
}

#[derive(Serialize)]
struct StandbyCtx<'a> {
    target: Target,
    node: &'a PostgresNode,
    primary: &'a PostgresNode,
    /// The server archives through pgBackRest, which reaches it on a
    /// socket in the directory scaleplan names.
    archive: bool,
}

#[derive(Serialize)]
struct RedisStartCtx {
    target: Target,
    auth_include: &'static str,
    /// printf format of a sentinel's auth include, where the phase has
    /// sentinels.
    sentinel_auth: Option<String>,
}

#[derive(Serialize)]
struct ClusterCtx<'a> {
    redis: &'a RedisLayout,
}

#[derive(Serialize)]
struct PgConfCtx<'a> {
    role: &'a str,
    node: &'a PostgresNode,
    postgres: &'a topology::PostgresCluster,
    listen_address: &'a str,
    hba_path: Option<&'a str>,
    socket_dir: Option<&'a str>,
    /// The local target names each node's socket directory on its command
    /// line (pgBackRest reaches the server there).
    socket_on_command_line: bool,
}

#[derive(Serialize)]
struct HbaCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    superuser: &'a str,
    replication_user: &'a str,
    client_network: &'a str,
    exporter_network: Option<&'a str>,
}

#[derive(Serialize)]
struct PgbouncerCtx<'a> {
    target: Target,
    node: &'a topology::PgbouncerNode,
    pgbouncer: &'a topology::PgbouncerTier,
    postgres: &'a topology::PostgresCluster,
    listen_address: &'a str,
    auth_file: &'a str,
    admin_user: &'a str,
    socket_dir: Option<&'a str>,
}

#[derive(Serialize)]
struct RedisConfCtx<'a> {
    node: &'a RedisNode,
    redis: &'a RedisLayout,
    bind: &'a str,
    data_dir: &'a str,
    auth_include: &'a str,
    conf: RedisConf,
}

#[derive(Serialize)]
struct SentinelCtx<'a> {
    node: &'a RedisNode,
    master: &'a RedisNode,
    redis: &'a RedisLayout,
    bind: &'a str,
    data_dir: &'a str,
    auth_include: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_message_follows_the_protocol() {
        // Length 32, protocol 3.0, then "user" "app" "database" "demo", each
        // NUL-terminated, and a final NUL.
        assert_eq!(
            startup_hex("app", "demo"),
            [
                "00000020",
                "00030000",
                "7573657200",
                "61707000",
                "646174616261736500",
                "64656d6f00",
                "00"
            ]
            .concat()
        );
    }
}

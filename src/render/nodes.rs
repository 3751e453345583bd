//! The config files of every node, for any target: postgresql.conf and
//! pg_hba.conf, pgbouncer.ini, redis.conf and sentinel.conf.

use super::{ADMIN_USER, Generated, Layout, REPLICATION_USER, Renderer, SUPERUSER, generated};
use crate::artifacts::Artifacts;
use crate::spec::types::RegionRole;
use crate::templates as t;
use crate::topology::{self, PostgresNode, RedisLayout, RedisNode, Topology};
use crate::validate::ValidPhase;
use anyhow::Context;
use minijinja::context;
use serde::Serialize;

impl Renderer {
    /// The files of one target, keyed by their path under out/<phase>/.
    pub fn render_target(
        &self,
        phase: &ValidPhase,
        layout: Layout,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = &phase.spec;
        let generated = generated(phase);
        let topo = topology::plan(spec, layout.target());
        let secondary: Vec<&str> = spec
            .regions
            .iter()
            .filter(|r| r.role == RegionRole::Secondary)
            .map(|r| r.name.as_str())
            .collect();
        self.render_nodes(&topo, layout, &generated, files)
            .and_then(|()| match layout {
                Layout::Compose => self.render_compose_only(&topo, &secondary, &generated, files),
                Layout::Local { .. } => Ok(()),
            })
            .with_context(|| format!("phase {}, {} target", spec.name, layout.dir()))
    }

    /// Config files of every node: the same templates for every target,
    /// with the target's addresses and paths.
    pub(super) fn render_nodes(
        &self,
        topo: &Topology,
        layout: Layout,
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let dir = layout.dir();
        let pg = &topo.postgres;
        let nodes: Vec<(&PostgresNode, &str)> = std::iter::once((&pg.primary, "primary"))
            .chain(pg.replicas.iter().map(|r| (r, "standby")))
            .collect();
        for (node, role) in &nodes {
            let node_dir = format!("{dir}/postgres/{}", node.name);
            files.insert(
                format!("{node_dir}/postgresql.conf"),
                self.render(
                    t::POSTGRESQL_CONF,
                    g,
                    PgConfCtx {
                        role,
                        node,
                        postgres: pg,
                        listen_address: layout.listen(),
                        hba_path: layout.hba_path(),
                        socket_dir: layout.socket_dir(),
                    },
                )?,
            );
            files.insert(
                format!("{node_dir}/pg_hba.conf"),
                self.render(
                    t::PG_HBA_CONF,
                    g,
                    HbaCtx {
                        postgres: pg,
                        superuser: SUPERUSER,
                        replication_user: REPLICATION_USER,
                        client_network: layout.client_network(),
                    },
                )?,
            );
        }
        files.insert(
            format!("{dir}/postgres/init-roles.sql"),
            self.render(t::INIT_ROLES_SQL, g, context! {})?,
        );
        for node in &topo.pgbouncer.instances {
            files.insert(
                format!("{dir}/pgbouncer/{}/pgbouncer.ini", node.name),
                self.render(
                    t::PGBOUNCER_INI,
                    g,
                    PgbouncerCtx {
                        node,
                        pgbouncer: &topo.pgbouncer,
                        postgres: pg,
                        listen_address: layout.listen_ipv4(),
                        auth_file: &layout.pgbouncer_auth_file(&node.name),
                        admin_user: ADMIN_USER,
                        socket_dir: layout.socket_dir(),
                    },
                )?,
            );
        }
        let redis = &topo.redis;
        for node in redis.data_nodes() {
            files.insert(
                format!("{dir}/redis/{}/redis.conf", node.name),
                self.render(
                    t::REDIS_CONF,
                    g,
                    RedisConfCtx {
                        node,
                        redis,
                        bind: layout.listen_ipv4(),
                        data_dir: &layout.redis_dir(&node.name),
                        auth_include: layout.redis_auth(),
                        repl_diskless_sync_delay: layout.diskless_sync_delay(),
                    },
                )?,
            );
        }
        if let RedisLayout::Sentinel {
            sentinels, nodes, ..
        } = redis
        {
            for node in sentinels {
                files.insert(
                    format!("{dir}/redis/{}/sentinel.conf", node.name),
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

#[derive(Serialize)]
struct PgConfCtx<'a> {
    role: &'a str,
    node: &'a PostgresNode,
    postgres: &'a topology::PostgresCluster,
    listen_address: &'a str,
    hba_path: Option<&'a str>,
    socket_dir: Option<&'a str>,
}

#[derive(Serialize)]
struct HbaCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    superuser: &'a str,
    replication_user: &'a str,
    client_network: &'a str,
}

#[derive(Serialize)]
struct PgbouncerCtx<'a> {
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
    repl_diskless_sync_delay: u32,
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

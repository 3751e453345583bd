//! What only the Compose target needs: docker-compose.yml, .env.example
//! and the scripts its containers run at start.

use super::Renderer;
use super::artifacts::Artifacts;
use super::auth;
use super::notice::Generated;
use super::templates as t;
use crate::plan::contract;
use crate::plan::identity::{ADMIN_USER, REPLICATION_USER, SUPERUSER};
use crate::plan::images::{self, ComposeImages, Family};
use crate::plan::layout::TargetFile;
use crate::plan::ports::{EDGE_PORT, GRAFANA_PORT, HostPorts};
use crate::plan::target::Target;
use crate::plan::topology::{self, MonitorNodes, RedisLayout, RedisNode, Topology};
use crate::spec::types::ImageSource;
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

impl Renderer {
    /// Files only Compose needs: the compose file and the scripts its
    /// containers run at start.
    pub(super) fn render_compose_only(
        &self,
        topo: &Topology,
        secondary: &[&str],
        g: &Generated,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let layout = Target::Compose;
        let pg = &topo.postgres;
        files.insert(
            TargetFile::PrimaryStart.of(layout),
            self.render(
                t::PRIMARY_START_SH,
                g,
                RolesCtx {
                    postgres: pg,
                    replication_user: REPLICATION_USER,
                    superuser: SUPERUSER,
                },
            )?,
        );
        files.insert(
            TargetFile::PgbouncerStart.of(layout),
            self.render(
                t::PGBOUNCER_START_SH,
                g,
                PgbouncerStartCtx {
                    userlist: auth::printf_format(&auth::pgbouncer_userlist(&[
                        ("%s", "%s"),
                        ("%s", "%s"),
                    ])),
                    postgres: pg,
                    pgbouncer: &topo.pgbouncer,
                    admin_user: ADMIN_USER,
                    auth_file: &layout.pgbouncer_auth_file(""),
                },
            )?,
        );
        let redis = &topo.redis;
        files.insert(
            TargetFile::Edge.of(layout),
            self.render(
                t::EDGE_CFG,
                g,
                context! {
                    app => Value::from(Serde(&topo.app)),
                    edge_port => EDGE_PORT,
                    edge_host_port => host_ports(topo)?.edge,
                    local => Value::from(()),
                },
            )?,
        );
        files.insert(
            TargetFile::ComposeFile.of(layout),
            self.render(t::DOCKER_COMPOSE_YML, g, ComposeCtx::new(topo, secondary)?)?,
        );
        if let Some(images) = &topo.images
            && images.source == ImageSource::Official
        {
            files.insert(
                TargetFile::Dockerfile(Family::Postgres.name()).of(layout),
                self.render(t::DOCKERFILE, g, images::official_postgres(pg.version))?,
            );
        }
        if let Some(images) = &topo.images
            && images.source == ImageSource::Debian
        {
            for family in Family::ALL {
                files.insert(
                    TargetFile::Dockerfile(family.name()).of(layout),
                    self.render(t::DOCKERFILE, g, images::recipe(family))?,
                );
            }
            files.insert(
                TargetFile::ExporterBuildRequirements.of(layout),
                requirements(g),
            );
        }
        if let Some(contract) = contract::host_vars(topo) {
            files.insert(
                TargetFile::HostAppEnv.of(layout),
                self.render(
                    t::APP_ENV,
                    g,
                    context! { contract => Value::from(Serde(&contract)), on_host => true },
                )?,
            );
        }
        files.insert(
            TargetFile::EnvExample.of(layout),
            self.render(
                t::ENV_EXAMPLE,
                g,
                context! {
                    postgres => Value::from(Serde(pg)),
                    replication_user => REPLICATION_USER,
                    admin_user => ADMIN_USER,
                    redis => Value::from(Serde(redis)),
                    grafana_host_port => host_ports(topo)?.grafana,
                },
            )?,
        );
        Ok(())
    }
}

#[derive(Serialize)]
struct RolesCtx<'a> {
    postgres: &'a topology::PostgresCluster,
    replication_user: &'a str,
    superuser: &'a str,
}

#[derive(Serialize)]
struct PgbouncerStartCtx<'a> {
    /// printf format of the auth file: (user, password) twice.
    userlist: String,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    admin_user: &'a str,
    auth_file: &'a str,
}

/// What Compose publishes on 127.0.0.1: planned for every Compose topology.
fn host_ports(topo: &Topology) -> anyhow::Result<&HostPorts> {
    topo.host_ports
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no host ports planned for {}", topo.target.dir()))
}

/// One Compose service that runs application code (the app, a service or
/// a worker).
#[derive(Serialize)]
struct AppService {
    name: String,
    image: String,
    port: Option<u16>,
    /// A node one-liner that requests the health path: the backend's image
    /// has node, not necessarily curl or wget.
    healthcheck: Option<String>,
    replicas: u32,
    resources: topology::Resources,
    uses_postgres: bool,
    uses_redis: bool,
}

#[derive(Serialize)]
struct ComposeCtx<'a> {
    project: &'a str,
    phase: &'a str,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    redis: &'a RedisLayout,
    redis_nodes: Vec<&'a RedisNode>,
    /// How redis/start.sh runs a data node.
    redis_start_mode: &'static str,
    queue_redis: Option<&'a topology::QueueRedis>,
    app_services: Vec<AppService>,
    volumes: Vec<String>,
    proxy: &'a topology::PgProxy,
    images: &'a ComposeImages,
    host_ports: &'a HostPorts,
    edge: &'static str,
    edge_port: u16,
    app_name: &'a str,
    /// Where workloads see the phase's scaling.json, and the mount of the
    /// copy beside the Compose file there.
    scaling_file: &'static str,
    scaling_mount: String,
    secondary_regions: &'a [&'a str],
    cluster_create: &'static str,
    monitoring: ComposeMonitoring<'a>,
}

/// Prometheus, Grafana and the exporters in Compose (their images are in
/// `images`).
#[derive(Serialize)]
struct ComposeMonitoring<'a> {
    nodes: &'a MonitorNodes,
    grafana: &'static str,
    grafana_port: u16,
    grafana_password: &'static str,
}

/// Where a Compose workload finds the phase's scaling.json.
pub const SCALING_IN_CONTAINER: &str = "/etc/scaleplan/scaling.json";

/// The PgBouncer exporter's pinned requirements file, with the notice.
pub fn requirements(g: &Generated) -> String {
    format!(
        "{}\n# pip install --no-deps -r pgbouncer-exporter.txt\n{}",
        g.lines("#"),
        PGBOUNCER_EXPORTER_REQUIREMENTS
    )
}

/// The PgBouncer exporter and its dependencies, pinned: installed with
/// `pip install --no-deps` (the exporter's own pins predate Python 3.11).
/// psycopg2-binary 2.9.10 has wheels for Python 3.11 (the official image,
/// Debian 12) and 3.13 (Debian 13, the `debian` images).
pub const PGBOUNCER_EXPORTER_REQUIREMENTS: &str = "prometheus-pgbouncer-exporter==2.1.2
psycopg2-binary==2.9.10
prometheus-client==0.8.0
python-json-logger==0.1.11
PyYAML==6.0.2
";

impl<'a> ComposeCtx<'a> {
    fn new(topo: &'a Topology, secondary: &'a [&'a str]) -> anyhow::Result<Self> {
        let pg = &topo.postgres;
        let pgb = &topo.pgbouncer;
        let redis = &topo.redis;
        let redis_nodes = redis.data_nodes();
        let probe = |port: u16, path: &str| {
            let url = serde_json::to_string(&format!("http://127.0.0.1:{port}{path}"))
                .unwrap_or_default();
            format!(
                "require('http').get({url}, (r) => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))"
            )
        };
        let app_services = topo
            .workloads()
            .into_iter()
            .map(|s| AppService {
                healthcheck: s.port.map(|p| probe(p, &s.health_path)),
                name: s.name,
                image: s.image,
                port: s.port,
                replicas: s.replicas,
                resources: s.resources,
                uses_postgres: s.uses_postgres,
                uses_redis: s.uses_redis,
            })
            .collect();
        Ok(ComposeCtx {
            project: &topo.project,
            phase: &topo.phase,
            postgres: pg,
            pgbouncer: pgb,
            redis,
            redis_nodes,
            redis_start_mode: redis.data_start().as_arg(),
            queue_redis: topo.queue_redis.as_ref(),
            app_services,
            volumes: topo.volumes(),
            proxy: &topo.proxy,
            images: topo
                .images
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no images planned for {}", topo.target.dir()))?,
            host_ports: host_ports(topo)?,
            edge: topology::EDGE,
            edge_port: EDGE_PORT,
            app_name: &topo.app.name,
            scaling_file: SCALING_IN_CONTAINER,
            scaling_mount: format!("./{}:{SCALING_IN_CONTAINER}:ro", TargetFile::Scaling.rel()),
            secondary_regions: secondary,
            cluster_create: topology::CLUSTER_CREATE,
            monitoring: ComposeMonitoring {
                nodes: &topo.monitor,
                grafana: topology::GRAFANA,
                grafana_port: GRAFANA_PORT,
                grafana_password: crate::plan::identity::GRAFANA_ADMIN_VAR,
            },
        })
    }
}

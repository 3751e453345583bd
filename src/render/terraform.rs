//! out/<phase>/terraform: the root module and the region module, formatted
//! from the cloud plan. PgBouncer's config is the same template every other
//! target renders, as a templatefile() the region module fills with its
//! RDS endpoints.

use super::artifacts::Artifacts;
use super::auth;
use super::templates as t;
use super::{Renderer, generated};
use crate::plan::PlannedPhase;
use crate::plan::cloud::{CloudService, DbParameter, RegionPlan};
use crate::plan::identity::ADMIN_USER;
use crate::plan::topology;
use serde::Serialize;

/// Where the region module finds PgBouncer's config template.
const PGBOUNCER_TEMPLATE: &str = "terraform/modules/region/pgbouncer.ini.tftpl";
/// Where the region module's bootstrap task finds its SQL.
const BOOTSTRAP_SQL: &str = "terraform/modules/region/bootstrap.sql";

impl Renderer {
    /// out/<phase>/terraform: the root module and the region module.
    pub(super) fn render_terraform(
        &self,
        phase: &PlannedPhase,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = phase.spec();
        let g = generated(phase);
        let cloud = &phase.cloud;
        let nodes = &phase.cloud_nodes;
        let primary = cloud
            .regions
            .iter()
            .find(|r| r.primary)
            .unwrap_or(&cloud.regions[0]);
        let ctx = TerraformCtx {
            project: spec.project.as_str(),
            phase: spec.name.as_str(),
            title: &phase.title,
            primary_region: &primary.aws_region,
            primary_module: &primary.module,
            primary_name: &primary.name,
            region_names: cloud.regions.iter().map(|r| r.name.as_str()).collect(),
            secondary_names: cloud
                .regions
                .iter()
                .filter(|r| !r.primary)
                .map(|r| r.name.as_str())
                .collect(),
            regions: &cloud.regions,
            secondary_regions: cloud.regions.iter().filter(|r| !r.primary).collect(),
            proxy: &nodes.proxy,
            bootstrap_image: &cloud.bootstrap_image,
            queues: &cloud.queues,
            runs_queues: cloud.runs_queues,
            idle_timeout: cloud.edge_idle_timeout,
            ping_interval_s: cloud.ping_interval_s,
            postgres: &nodes.postgres,
            pgbouncer: &nodes.pgbouncer,
            pgbouncer_size: cloud.pgbouncer_size,
            parameters: &cloud.parameters,
            multi_az: cloud.multi_az,
            performance_insights: cloud.performance_insights,
            postgres_class: &cloud.postgres_class,
            admin_user: ADMIN_USER,
            services: &cloud.services,
            userlist_format: auth::printf_format(&auth::pgbouncer_userlist(&[
                ("%s", "%s"),
                ("%s", "%s"),
            ])),
            state: cloud.state.as_ref(),
            alarms: Alarms {
                warning: (crate::plan::monitoring::WARNING * 100.0).round() as u32,
                critical: (crate::plan::monitoring::CRITICAL * 100.0).round() as u32,
                next: phase.next.as_deref(),
                plan: phase.monitoring.transition.clone(),
                max_connections: spec.postgres.primary.max_connections,
                app_service: &nodes.app.name,
                redis: {
                    // The engine thread's sustainable share of a core: the
                    // CPU credit baseline on a burstable node.
                    let class = crate::plan::cloud::cache_class(spec, &spec.redis);
                    let baseline =
                        f64::from(crate::plan::capacity::redis_ops_per_node(&class)) / 1000.0;
                    RedisAlarms {
                        cpu_warning: (baseline * crate::plan::monitoring::WARNING).round() as u32,
                        cpu_critical: (baseline * crate::plan::monitoring::CRITICAL).round() as u32,
                        burstable: class.starts_with("cache.t"),
                        memory_bytes: u64::from(spec.redis.maxmemory_mb) * 1024 * 1024,
                    }
                },
            },
        };
        for name in [
            t::TF_VERSIONS,
            t::TF_VARIABLES,
            t::TF_MAIN,
            t::TF_OUTPUTS,
            t::TF_README,
            t::TF_TEST,
            t::TF_SECRETS,
            t::TF_REGION_VERSIONS,
            t::TF_REGION_VARIABLES,
            t::TF_REGION_README,
            t::TF_REGION_SECURITY,
            t::TF_REGION_EDGE,
            t::TF_REGION_BOOTSTRAP,
            t::TF_REGION_POSTGRES,
            t::TF_REGION_REDIS,
            t::TF_REGION_SERVICES,
            t::TF_REGION_OUTPUTS,
            t::TF_REGION_ALARMS,
        ] {
            files.insert(name.to_owned(), self.render(name, &g, &ctx)?);
        }
        // The peering exists only between regions.
        if !ctx.secondary_regions.is_empty() {
            files.insert(
                t::TF_NETWORK.to_owned(),
                self.render(t::TF_NETWORK, &g, &ctx)?,
            );
        }
        files.insert(
            BOOTSTRAP_SQL.to_owned(),
            self.render(t::RDS_BOOTSTRAP_SQL, &g, &ctx)?,
        );
        // Every ECS task of the PgBouncer service runs one and the same
        // file, so it is rendered for the first instance.
        if let Some(node) = nodes.pgbouncer.instances.first() {
            files.insert(
                PGBOUNCER_TEMPLATE.to_owned(),
                self.pgbouncer_ini(nodes, node, &g)?,
            );
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct TerraformCtx<'a> {
    project: &'a str,
    phase: &'a str,
    title: &'a str,
    primary_region: &'a str,
    primary_module: &'a str,
    primary_name: &'a str,
    region_names: Vec<&'a str>,
    secondary_names: Vec<&'a str>,
    regions: &'a [RegionPlan],
    secondary_regions: Vec<&'a RegionPlan>,
    proxy: &'a topology::PgProxy,
    bootstrap_image: &'a str,
    queues: &'a [String],
    runs_queues: bool,
    idle_timeout: u32,
    ping_interval_s: u32,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    pgbouncer_size: [u32; 2],
    parameters: &'a [DbParameter],
    multi_az: bool,
    performance_insights: bool,
    postgres_class: &'a str,
    admin_user: &'a str,
    services: &'a [CloudService],
    userlist_format: String,
    state: Option<&'a crate::plan::cloud::StateBackend>,
    alarms: Alarms<'a>,
}

/// What the CloudWatch alarms need of the model and the rollout.
#[derive(Serialize)]
struct Alarms<'a> {
    warning: u32,
    critical: u32,
    next: Option<&'a str>,
    plan: Option<String>,
    max_connections: u32,
    app_service: &'a str,
    redis: RedisAlarms,
}

#[derive(Serialize)]
struct RedisAlarms {
    /// Engine CPU percent at the warning and the critical level: the
    /// thresholds' share of the node's sustainable CPU.
    cpu_warning: u32,
    cpu_critical: u32,
    burstable: bool,
    /// The model's maxmemory per node (ElastiCache's own follows the node
    /// type).
    memory_bytes: u64,
}

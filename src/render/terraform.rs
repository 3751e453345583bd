//! out/<phase>/terraform: the root module and the region module.

use super::{ADMIN_USER, Renderer, generated};
use crate::artifacts::Artifacts;
use crate::templates as t;
use crate::topology::{self, Target};
use crate::validate::ValidPhase;
use serde::Serialize;

impl Renderer {
    /// out/<phase>/terraform: the root module and the region module.
    pub(super) fn render_terraform(
        &self,
        phase: &ValidPhase,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let spec = &phase.spec;
        let g = generated(phase);
        let topo = topology::plan(spec, Target::Compose);
        let regions = crate::terraform::regions(spec);
        let primary = regions.iter().find(|r| r.primary).unwrap_or(&regions[0]);
        let size = |cpu: f64, memory: u32| crate::terraform::fargate(cpu, memory);
        let services = topo
            .workloads()
            .into_iter()
            .map(|s| {
                let (cpu, memory) = size(s.resources.cpu, s.resources.memory_mb);
                TfService {
                    name: s.name,
                    image: s.image,
                    replicas: s.replicas,
                    cpu,
                    memory,
                    port: s.port,
                    uses_postgres: s.uses_postgres,
                    uses_redis: s.uses_redis,
                }
            })
            .collect();
        let pgb_size = size(
            topo.pgbouncer.resources.cpu,
            topo.pgbouncer.resources.memory_mb,
        );
        let ctx = TerraformCtx {
            project: spec.project.as_str(),
            phase: spec.name.as_str(),
            title: g.title.clone(),
            primary_region: primary.aws_region.clone(),
            primary_module: primary.module.clone(),
            primary_name: primary.name.clone(),
            region_names: regions.iter().map(|r| r.name.clone()).collect(),
            secondary_names: regions
                .iter()
                .filter(|r| !r.primary)
                .map(|r| r.name.clone())
                .collect(),
            regions: regions.clone(),
            postgres: &topo.postgres,
            pgbouncer: &topo.pgbouncer,
            pgbouncer_size: [pgb_size.0, pgb_size.1],
            parameters: crate::terraform::db_parameters(spec),
            multi_az: spec.postgres.multi_az,
            postgres_class: crate::terraform::db_class(spec),
            admin_user: ADMIN_USER,
            services,
        };
        for name in [
            t::TF_VERSIONS,
            t::TF_VARIABLES,
            t::TF_MAIN,
            t::TF_OUTPUTS,
            t::TF_README,
            t::TF_TEST,
            t::TF_REGION_VERSIONS,
            t::TF_REGION_VARIABLES,
            t::TF_REGION_SECURITY,
            t::TF_REGION_SECRETS,
            t::TF_REGION_POSTGRES,
            t::TF_REGION_REDIS,
            t::TF_REGION_SERVICES,
            t::TF_REGION_OUTPUTS,
        ] {
            files.insert(name.to_owned(), self.render(name, &g, &ctx)?);
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct TfService {
    name: String,
    image: String,
    replicas: u32,
    /// Fargate CPU units and MiB.
    cpu: u32,
    memory: u32,
    port: Option<u16>,
    uses_postgres: bool,
    uses_redis: bool,
}

#[derive(Serialize)]
struct TerraformCtx<'a> {
    project: &'a str,
    phase: &'a str,
    title: String,
    primary_region: String,
    primary_module: String,
    primary_name: String,
    region_names: Vec<String>,
    secondary_names: Vec<String>,
    regions: Vec<crate::terraform::RegionPlan>,
    postgres: &'a topology::PostgresCluster,
    pgbouncer: &'a topology::PgbouncerTier,
    pgbouncer_size: [u32; 2],
    parameters: Vec<crate::terraform::DbParameter>,
    multi_az: bool,
    postgres_class: String,
    admin_user: &'a str,
    services: Vec<TfService>,
}

//! `up --native --monitoring`: Prometheus and the exporters beside a
//! bring-up, from the files of config/local/monitoring, each recorded as
//! a process of kind `monitor` (so `down` stops it, and a migration
//! restarts it with the next phase's targets).

use super::bringup::Bringup;
use super::probe::http_get;
use super::procs::{self, Launch, Proc};
use super::tools::MonitorTools;
use crate::plan::identity::{SUPERUSER, Secret};
use crate::plan::layout::TargetFile;
use crate::plan::topology::{PGBOUNCER_EXPORTER, PROMETHEUS, REDIS_EXPORTER};
use std::time::{Duration, Instant};

/// The kind of every monitoring process in state.json.
pub const KIND: &str = "monitor";

impl Bringup {
    pub fn monitoring(&mut self) -> anyhow::Result<()> {
        let tools = MonitorTools::find()?;
        let e = self.topo.monitor.clone();
        let pg_password = self.secrets.get(Secret::Postgres).to_owned();
        for x in &e.postgres_exporters {
            // The password in the environment, never on the command line.
            let launch = Launch::new(&tools.postgres_exporter)
                .arg(format!("--web.listen-address={}", x.endpoint))
                .env(
                    "DATA_SOURCE_URI",
                    &format!("{}/postgres?sslmode=disable", x.target),
                )
                .env("DATA_SOURCE_USER", SUPERUSER)
                .env("DATA_SOURCE_PASS", &pg_password);
            self.start_monitor(launch, &x.name, x.endpoint.port, "/metrics")?;
        }
        let launch = Launch::new(&tools.redis_exporter)
            .arg("-web.listen-address")
            .arg(e.redis_exporter.to_string())
            .env("REDIS_PASSWORD", self.secrets.get(Secret::Redis));
        self.start_monitor(launch, REDIS_EXPORTER, e.redis_exporter.port, "/")?;
        let launch = Launch::new(&tools.pgbouncer_exporter)
            .arg("--config")
            .arg(self.config.join(TargetFile::PgbouncerExporter.rel()))
            .env(
                Secret::PgbouncerAdmin.var(),
                self.secrets.get(Secret::PgbouncerAdmin),
            );
        self.start_monitor(
            launch,
            PGBOUNCER_EXPORTER,
            e.pgbouncer_exporter.port,
            "/metrics",
        )?;
        let data = self.state_dir.join("prometheus");
        std::fs::create_dir_all(&data)?;
        let launch = Launch::new(&tools.prometheus)
            .arg(format!(
                "--config.file={}",
                self.config.join(TargetFile::Prometheus.rel()).display()
            ))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={}", e.prometheus))
            .arg("--web.enable-lifecycle");
        self.start_monitor(launch, PROMETHEUS, e.prometheus.port, "/-/ready")?;
        self.await_targets(e.prometheus.port)
    }

    fn start_monitor(
        &mut self,
        launch: Launch,
        name: &str,
        port: u16,
        ready: &str,
    ) -> anyhow::Result<()> {
        let since = Instant::now();
        if self.keep_running(name) {
            return Ok(());
        }
        self.spawn(launch, name, KIND, port)?;
        self.await_ready(name, "answering over HTTP", since, || {
            http_get(port, ready).filter(|(s, _)| *s == 200).map(|_| ())
        })
    }

    /// Until Prometheus scrapes every target it has, each one up.
    fn await_targets(&self, port: u16) -> anyhow::Result<()> {
        let since = Instant::now();
        let mut seen = (0, 0);
        let result = self.await_ready("prometheus", "scraping every exporter", since, || {
            let (_, body) = http_get(port, "/api/v1/targets?state=active")?;
            let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
            let targets = doc["data"]["activeTargets"].as_array()?;
            let up = targets.iter().filter(|t| t["health"] == "up").count();
            seen = (up, targets.len());
            (up == targets.len() && !targets.is_empty()).then_some(())
        });
        result.map_err(|e| e.context(format!("{} of {} targets up", seen.0, seen.1)))
    }

    /// Stops every monitoring process (a migration starts them again from
    /// the next phase's files). True when any ran.
    pub fn stop_monitoring(&mut self) -> anyhow::Result<bool> {
        let running: Vec<Proc> = self
            .state
            .processes
            .iter()
            .filter(|p| p.kind == KIND && p.alive())
            .cloned()
            .collect();
        procs::stop_all(&running, Duration::from_secs(10));
        self.state.processes.retain(|p| p.kind != KIND);
        self.running.retain(|p| p.kind != KIND);
        self.state.save(&self.state_dir)?;
        Ok(!running.is_empty())
    }
}

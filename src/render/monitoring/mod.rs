//! The monitoring of a phase: Prometheus's rules (recording the use,
//! modelled capacity and utilisation of each resource of the capacity
//! model; alerting at the model's thresholds, on the N-1 rule, on the
//! trend, and on what breaks silently), their promtool unit tests, the
//! Grafana dashboard, and each target's Prometheus configuration.

mod alerts;
mod dashboard;
mod rule;
mod rule_tests;
mod scrape;
mod silent;

use super::artifacts::Artifacts;
use super::templates as t;
use super::{Renderer, generated};
use crate::plan::PlannedPhase;
use crate::plan::identity::Secret;
use crate::plan::layout::{PhaseFile, TargetFile};
use crate::plan::target::Target;
use crate::plan::topology::Topology;

use crate::plan::monitoring::Monitoring;
use alerts::{alert, capacity_alerts, unmeasured_rule};
use dashboard::dashboard;
use minijinja::context;
use minijinja::value::{Serde, Value};
use rule::{Group, record};
use rule_tests::{TestsCtx, tests};
use scrape::{PgbouncerExporterCtx, PrometheusCtx, scrape_jobs};
use serde::Serialize;
use silent::{silent_alerts, silent_rule};

impl Renderer {
    /// monitoring/: the rules, their tests and the dashboard, which every
    /// target shares.
    pub(super) fn render_monitoring(
        &self,
        phase: &PlannedPhase,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let g = generated(phase);
        let m = &phase.monitoring;
        let rules = self.render(t::PROMETHEUS_RULES, &g, rules_ctx(m))?;
        files.insert(PhaseFile::Rules.rel().to_owned(), rules);
        files.insert(
            PhaseFile::RuleTests.rel().to_owned(),
            self.render(t::PROMETHEUS_RULES_TEST, &g, TestsCtx { tests: tests(m) })?,
        );
        files.insert(PhaseFile::Dashboard.rel().to_owned(), dashboard(m, &g));
        Ok(())
    }

    /// A target's monitoring/: its Prometheus configuration (the rules
    /// beside it) and the PgBouncer exporter's.
    pub(super) fn render_target_monitoring(
        &self,
        phase: &PlannedPhase,
        topo: &Topology,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let g = generated(phase);
        let m = &phase.monitoring;
        let local = matches!(topo.target, Target::Local { .. });
        files.insert(
            TargetFile::Prometheus.of(topo.target),
            self.render(
                t::PROMETHEUS_YML,
                &g,
                PrometheusCtx {
                    phase: phase.name(),
                    // Quicker feedback on a laptop; the usual 15 s elsewhere.
                    scrape_interval: if local { "5s" } else { "15s" },
                    rules: "rules.yml",
                    jobs: scrape_jobs(topo),
                },
            )?,
        );
        files.insert(
            TargetFile::Rules.of(topo.target),
            self.render(t::PROMETHEUS_RULES, &g, rules_ctx(m))?,
        );
        files.insert(
            TargetFile::PgbouncerExporter.of(topo.target),
            self.render(
                t::PGBOUNCER_EXPORTER_YML,
                &g,
                PgbouncerExporterCtx {
                    host: if local { "127.0.0.1" } else { "0.0.0.0" }.to_owned(),
                    port: topo.monitor.pgbouncer_exporter.port,
                    bouncers: topo
                        .pgbouncer
                        .instances
                        .iter()
                        .map(|p| (p.name.clone(), p.endpoint.host.clone(), p.endpoint.port))
                        .collect(),
                    admin_var: Secret::PgbouncerAdmin.var(),
                },
            )?,
        );
        if !local {
            files.insert(
                TargetFile::PgbouncerExporterRequirements.of(topo.target),
                super::compose::requirements(&g),
            );
            files.insert(
                TargetFile::PgbouncerExporterStart.of(topo.target),
                self.render(t::PGBOUNCER_EXPORTER_START_SH, &g, ())?,
            );
            files.insert(
                TargetFile::GrafanaDashboard.of(topo.target),
                dashboard(m, &g),
            );
            files.insert(
                TargetFile::GrafanaDatasource.of(topo.target),
                self.render(
                    t::GRAFANA_DATASOURCE,
                    &g,
                    context! { prometheus => Value::from(Serde(&topo.monitor.prometheus)) },
                )?,
            );
            files.insert(
                TargetFile::GrafanaDashboards.of(topo.target),
                self.render(t::GRAFANA_DASHBOARDS, &g, ())?,
            );
        }
        Ok(())
    }
}

fn groups(m: &Monitoring) -> Vec<Group> {
    let mut recording = Vec::new();
    let mut capacity = Vec::new();
    for w in &m.watches {
        recording.push(record("scaleplan:use", w.used.clone(), w));
        recording.push(record(
            "scaleplan:capacity",
            format!("vector({})", w.supply),
            w,
        ));
        recording.push(record("scaleplan:utilisation", w.utilisation.clone(), w));
        for a in capacity_alerts(m, w) {
            capacity.push(alert(m, w, &a));
        }
        capacity.push(unmeasured_rule(m, w));
    }
    let silent = silent_alerts(m).iter().map(|s| silent_rule(m, s)).collect();
    vec![
        Group {
            name: "scaleplan-capacity-recording",
            rules: recording,
        },
        Group {
            name: "scaleplan-capacity-alerts",
            rules: capacity,
        },
        Group {
            name: "scaleplan-silent-failures",
            rules: silent,
        },
    ]
}

/// Every capacity alert at 90% and at 50% of each resource, the trend, and
/// each silent-failure alert on the series that should set it off.

#[derive(Serialize)]
struct RulesCtx {
    groups: Vec<Group>,
    warning: f64,
    critical: f64,
}

fn rules_ctx(m: &Monitoring) -> RulesCtx {
    RulesCtx {
        groups: groups(m),
        warning: m.warning,
        critical: m.critical,
    }
}

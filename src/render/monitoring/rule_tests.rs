//! promtool unit tests of every alert: each capacity alert at 90% and
//! at 50% of its resource, the trend, and each silent-failure alert on the
//! series that should set it off.

use super::alerts::{CapacityAlert, alert, capacity_alerts, unmeasured_rule};
use super::rule::alert_labels;
use super::silent::silent_alerts;
use crate::plan::monitoring::{self, Monitoring, Severity};
use crate::plan::names;
use serde::Serialize;
use std::collections::BTreeMap;

/// One promtool test: input series, and what each alert does at a time.
#[derive(Serialize)]
pub(super) struct Test {
    pub(super) name: String,
    pub(super) series: Vec<(String, String)>,
    pub(super) eval_time: &'static str,
    pub(super) alerts: Vec<Expect>,
}

#[derive(Serialize)]
pub(super) struct Expect {
    pub(super) alertname: String,
    /// Labels and annotations of each alert expected to fire; empty: none.
    pub(super) fire: Vec<Fired>,
}

#[derive(Serialize, Clone)]
pub(super) struct Fired {
    pub(super) labels: BTreeMap<&'static str, String>,
    pub(super) annotations: BTreeMap<&'static str, String>,
}

pub(super) fn tests(m: &Monitoring) -> Vec<Test> {
    let mut out = Vec::new();
    for w in &m.watches {
        let alerts = capacity_alerts(m, w);
        let fired = |a: &CapacityAlert| Fired {
            labels: {
                let mut l = alert_labels(m, a.severity, w.bottleneck);
                l.insert("resource", w.resource.to_owned());
                l
            },
            annotations: alert(m, w, a).annotations,
        };
        out.push(Test {
            name: format!("{} at 90% of its modelled capacity", w.label),
            series: w.test_high.clone(),
            eval_time: "10m",
            alerts: alerts
                .iter()
                .filter_map(|a| {
                    let fires = match a.name {
                        "ScaleplanCapacityExhaustion" => return None,
                        // Losing one of N leaves (N-1)/N: at 90% that is
                        // too little only while (N-1)/N is below it; too
                        // close to call, it is not checked here.
                        "ScaleplanCapacityNMinusOne" => {
                            let share = w.n_minus_one?;
                            if (share - 0.9).abs() < 0.01 {
                                return None;
                            }
                            share < 0.9
                        }
                        _ => true,
                    };
                    Some(Expect {
                        alertname: a.name.to_owned(),
                        fire: if fires { vec![fired(a)] } else { Vec::new() },
                    })
                })
                .collect(),
        });
        out.push(Test {
            name: format!("{} at 50%: no alert", w.label),
            series: w.test_half.clone(),
            eval_time: "10m",
            alerts: alerts
                .iter()
                .filter(|a| {
                    a.severity == Severity::Critical || a.name == "ScaleplanCapacityWarning"
                })
                .map(|a| Expect {
                    alertname: a.name.to_owned(),
                    fire: Vec::new(),
                })
                .collect(),
        });
    }
    // A trend: the WebSocket connections climb from 10% to 60% of the
    // supply over 6 hours; at that rate they run out within the week.
    if let Some(w) = m.watches.iter().find(|w| w.resource == "websocket") {
        let per = w.supply / f64::from(w.units.max(1));
        let start = per * 0.1;
        let step = per * 0.5 / 1440.0;
        let a = capacity_alerts(m, w)
            .into_iter()
            .find(|a| a.name == "ScaleplanCapacityExhaustion")
            .expect("every resource has a trend alert");
        out.push(Test {
            name: format!("{} rising: exhausted within the week", w.label),
            series: vec![(
                format!(
                    "{}{{job=\"app\"}}",
                    crate::plan::monitoring::APP_WEBSOCKET_METRIC
                ),
                format!("{start}+{step}x2200"),
            )],
            eval_time: "9h",
            alerts: vec![Expect {
                alertname: a.name.to_owned(),
                fire: vec![Fired {
                    labels: {
                        let mut l = alert_labels(m, a.severity, w.bottleneck);
                        l.insert("resource", w.resource.to_owned());
                        l
                    },
                    annotations: alert(m, w, &a).annotations,
                }],
            }],
        });
    }
    // Nothing measured at all: every resource says so.
    out.push(Test {
        name: "nothing measured".to_owned(),
        series: vec![("up{job=\"prometheus\"}".to_owned(), "1x240".to_owned())],
        eval_time: "20m",
        alerts: vec![Expect {
            alertname: "ScaleplanUnmeasured".to_owned(),
            fire: m
                .watches
                .iter()
                .map(|w| {
                    let rule = unmeasured_rule(m, w);
                    Fired {
                        labels: rule.labels,
                        annotations: rule.annotations,
                    }
                })
                .collect(),
        }],
    });
    // An idle PgBouncer lists no pool and no database yet: its resources
    // read 0 while its exporter is up, and only the others are unmeasured.
    out.push(Test {
        name: "an idle PgBouncer is measured".to_owned(),
        series: vec![
            ("up{job=\"prometheus\"}".to_owned(), "1x240".to_owned()),
            (
                format!("pgbouncer_up{{node=\"{}\"}}", names::pgbouncer(1)),
                "1x240".to_owned(),
            ),
        ],
        eval_time: "20m",
        alerts: vec![Expect {
            alertname: "ScaleplanUnmeasured".to_owned(),
            fire: m
                .watches
                .iter()
                .filter(|w| !w.used.contains("pgbouncer_"))
                .map(|w| {
                    let rule = unmeasured_rule(m, w);
                    Fired {
                        labels: rule.labels,
                        annotations: rule.annotations,
                    }
                })
                .collect(),
        }],
    });
    // A queue that drains: a backlog under the depth alert and jobs that
    // wait under the age alert set off neither. Every app replica reports
    // the same counts (they come from Redis): two replicas here, so rules
    // that added them up instead of taking one would fire.
    for q in &m.queues {
        let series = q
            .queues
            .iter()
            .flat_map(|queue| {
                ["app-1", "app-2"].into_iter().flat_map(move |instance| {
                    [
                        (
                            format!(
                                "{}{{queue=\"{queue}\",state=\"waiting\",job=\"app\",instance=\"{instance}\"}}",
                                monitoring::BULLMQ_JOB_COUNT
                            ),
                            format!("{}x240", q.depth_alert * 2 / 3),
                        ),
                        (
                            format!(
                                "{}{{queue=\"{queue}\",job=\"app\",instance=\"{instance}\"}}",
                                monitoring::OLDEST_JOB_AGE
                            ),
                            format!("{}x240", q.age_alert_seconds * 2 / 3),
                        ),
                    ]
                })
            })
            .collect();
        out.push(Test {
            name: format!("the queues of worker {} drain: no queue alert", q.worker),
            series,
            eval_time: "20m",
            alerts: [
                "BullmqQueueDepth",
                "BullmqOldestJobAge",
                "BullmqOldestJobAgeUnmeasured",
            ]
            .into_iter()
            .map(|a| Expect {
                alertname: a.to_owned(),
                fire: Vec::new(),
            })
            .collect(),
        });
    }
    for s in silent_alerts(m) {
        let mut labels = alert_labels(m, s.severity, s.bottleneck);
        for (k, v) in &s.result_labels {
            labels.insert(k, v.clone());
        }
        out.push(Test {
            name: format!("{} fires", s.name),
            series: s.fires_on.clone(),
            eval_time: "20m",
            alerts: vec![Expect {
                alertname: s.name.to_owned(),
                fire: vec![Fired {
                    labels,
                    annotations: BTreeMap::from([("summary", s.summary.clone())]),
                }],
            }],
        });
    }
    out
}

#[derive(Serialize)]
pub(super) struct TestsCtx {
    pub(super) tests: Vec<Test>,
}

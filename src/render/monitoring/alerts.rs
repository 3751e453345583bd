//! The rules: each resource's recorded use, capacity and utilisation,
//! and the alerts at the model's thresholds, on the N-1 rule and on the
//! trend, from one table (`capacity_alerts`) that the rule tests read too.

use super::silent::{silent_alerts, silent_rule};
use crate::plan::capacity::Bottleneck;
use crate::plan::monitoring::{Monitoring, Severity, Watch};
use crate::render::format::thousands;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
pub(super) struct Rule {
    /// "record" or "alert".
    pub(super) kind: &'static str,
    pub(super) name: String,
    pub(super) expr: String,
    /// How long it must hold before firing.
    pub(super) wait: Option<&'static str>,
    pub(super) labels: BTreeMap<&'static str, String>,
    pub(super) annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
pub(super) struct Group {
    pub(super) name: &'static str,
    pub(super) rules: Vec<Rule>,
}

pub(super) fn record(name: &str, expr: String, w: &Watch) -> Rule {
    Rule {
        kind: "record",
        name: name.to_owned(),
        expr,
        wait: None,
        labels: BTreeMap::from([
            ("resource", w.resource.to_owned()),
            ("bottleneck", w.bottleneck.as_str().to_owned()),
        ]),
        annotations: BTreeMap::new(),
    }
}

pub(super) fn show(v: f64, unit: &str) -> String {
    if unit == "bytes" {
        format!("{} MB", thousands((v / 1_048_576.0).round() as u64))
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{} {unit}", thousands(v.round() as u64))
    } else {
        format!("{v:.2} {unit}")
    }
}

/// Where to go from here, for every capacity alert.
pub(super) fn next_step(m: &Monitoring) -> String {
    match (&m.next, &m.transition) {
        (Some(next), Some(plan)) => format!(
            "The next phase is {next}: review {plan} and run `scaleplan migrate {next}` (local) or apply its plan."
        ),
        _ => format!(
            "{} is the last phase: add a larger one to the phases directory.",
            m.phase
        ),
    }
}

pub(super) struct CapacityAlert {
    pub(super) name: &'static str,
    pub(super) severity: Severity,
    pub(super) expr: String,
    pub(super) for_: &'static str,
    pub(super) summary: String,
}

/// An input missing is not "no alert": a resource nobody measures says so.
pub(super) fn unmeasured_rule(m: &Monitoring, w: &Watch) -> Rule {
    Rule {
        kind: "alert",
        name: "ScaleplanUnmeasured".to_owned(),
        expr: format!("absent(scaleplan:use{{resource=\"{}\"}})", w.resource),
        wait: Some("10m"),
        labels: {
            let mut l = alert_labels(m, Severity::Warning, w.bottleneck);
            l.insert("resource", w.resource.to_owned());
            l
        },
        annotations: BTreeMap::from([(
            "summary",
            format!(
                "{} is not measured: {} is missing, so no capacity alert can fire for it",
                w.label, w.source
            ),
        )]),
    }
}

/// "WebSocket's", but "notifications'" and "database replicas'".
pub(super) fn possessive(label: &str) -> String {
    if label.ends_with('s') {
        format!("{label}'")
    } else {
        format!("{label}'s")
    }
}

pub(super) fn capacity_alerts(m: &Monitoring, w: &Watch) -> Vec<CapacityAlert> {
    if !w.capacity_alerts {
        return Vec::new();
    }
    let sel = format!("scaleplan:utilisation{{resource=\"{}\"}}", w.resource);
    let of = format!(
        "{}'s modelled {} ({})",
        m.phase,
        w.label,
        show(w.supply, w.unit)
    );
    let mut out = vec![
        CapacityAlert {
            name: "ScaleplanCapacityWarning",
            severity: Severity::Warning,
            expr: format!("{sel} > {}", m.warning),
            for_: "5m",
            summary: format!("{} above {:.0}% of {of}", w.label, m.warning * 100.0),
        },
        CapacityAlert {
            name: "ScaleplanCapacityCritical",
            severity: Severity::Critical,
            expr: format!("{sel} > {}", m.critical),
            for_: "5m",
            summary: format!("{} above {:.0}% of {of}", w.label, m.critical * 100.0),
        },
        CapacityAlert {
            name: "ScaleplanCapacityExhaustion",
            severity: Severity::Warning,
            // The trend of the daily peaks, not of the hours: a morning's
            // climb projected over a week would fire every day.
            expr: format!(
                "predict_linear(max_over_time({sel}[1d])[14d:1h], {}) > 1",
                m.predict_seconds
            ),
            for_: "1h",
            summary: format!(
                "{} daily peaks, at their trend, run out of {of} within 7 days",
                possessive(w.label)
            ),
        },
    ];
    if let Some(share) = w.n_minus_one {
        out.push(CapacityAlert {
            name: "ScaleplanCapacityNMinusOne",
            severity: Severity::Warning,
            expr: format!("{sel} > {share:.4}"),
            for_: "5m",
            summary: format!(
                "{}: losing one of its {} would leave less than the load needs ({of})",
                w.label, w.units
            ),
        });
    }
    out
}

pub(super) fn alert(m: &Monitoring, w: &Watch, a: &CapacityAlert) -> Rule {
    Rule {
        kind: "alert",
        name: a.name.to_owned(),
        expr: a.expr.clone(),
        wait: Some(a.for_),
        labels: {
            let mut l = alert_labels(m, a.severity, w.bottleneck);
            l.insert("resource", w.resource.to_owned());
            l
        },
        annotations: BTreeMap::from([
            ("summary", a.summary.clone()),
            (
                "description",
                format!("Measured: {}. {}", w.source, next_step(m)),
            ),
        ]),
    }
}

pub(super) fn alert_labels(
    m: &Monitoring,
    severity: Severity,
    bottleneck: Bottleneck,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("severity", severity.as_str().to_owned()),
        ("phase", m.phase.clone()),
        ("bottleneck", bottleneck.as_str().to_owned()),
    ])
}

pub(super) fn groups(m: &Monitoring) -> Vec<Group> {
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
pub(super) struct RulesCtx {
    pub(super) groups: Vec<Group>,
    pub(super) warning: f64,
    pub(super) critical: f64,
}

pub(super) fn rules_ctx(m: &Monitoring) -> RulesCtx {
    RulesCtx {
        groups: groups(m),
        warning: m.warning,
        critical: m.critical,
    }
}

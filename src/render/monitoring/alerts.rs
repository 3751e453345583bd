//! The rules: each resource's recorded use, capacity and utilisation,
//! and the alerts at the model's thresholds, on the N-1 rule and on the
//! trend, from one table (`capacity_alerts`) that the rule tests read too.

use super::rule::{Rule, alert_labels};
use crate::plan::monitoring::{Monitoring, Severity, Watch};
use crate::render::format::thousands;
use std::collections::BTreeMap;

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

//! A Prometheus rule as the rules template writes it, and the labels
//! every alert carries.

use crate::plan::capacity::Bottleneck;
use crate::plan::monitoring::{Monitoring, Severity, Watch};
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

//! The Grafana dashboard: a row per resource, the measured use beside
//! the modelled capacity and the alert thresholds.

use super::alerts::show;
use crate::plan::monitoring::Monitoring;

pub(super) fn dashboard(m: &Monitoring, g: &crate::render::notice::Generated) -> String {
    let mut panels = Vec::new();
    let mut y = 0;
    for (i, w) in m.watches.iter().enumerate() {
        panels.push(serde_json::json!({
            "type": "row",
            "title": w.label,
            "id": 100 + i,
            "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }));
        y += 1;
        let sel = format!("{{resource=\"{}\"}}", w.resource);
        panels.push(serde_json::json!({
            "type": "timeseries",
            "title": format!("{}: use and modelled capacity ({})", w.label, w.unit),
            "id": 200 + i,
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"h": 8, "w": 16, "x": 0, "y": y},
            "description": format!("Measured: {}. Modelled: {} (scaleplan capacity).", w.source, show(w.supply, w.unit)),
            "fieldConfig": {"defaults": {"unit": grafana_unit(w.unit)}, "overrides": []},
            "targets": [
                {"refId": "A", "expr": format!("scaleplan:use{sel}"), "legendFormat": "measured"},
                {"refId": "B", "expr": format!("scaleplan:capacity{sel}"), "legendFormat": "modelled capacity"},
                {"refId": "C", "expr": format!("scaleplan:capacity{sel} * {}", m.warning), "legendFormat": "warning"},
                {"refId": "D", "expr": format!("scaleplan:capacity{sel} * {}", m.critical), "legendFormat": "critical"},
            ],
        }));
        panels.push(serde_json::json!({
            "type": "gauge",
            "title": format!("{}: utilisation", w.label),
            "id": 300 + i,
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"h": 8, "w": 8, "x": 16, "y": y},
            "fieldConfig": {"defaults": {
                "unit": "percentunit", "min": 0, "max": 1,
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": "green", "value": null},
                    {"color": "orange", "value": m.warning},
                    {"color": "red", "value": m.critical},
                ]},
            }, "overrides": []},
            "targets": [{"refId": "A", "expr": format!("scaleplan:utilisation{sel}")}],
        }));
        y += 8;
    }
    // JSON has no comments: the notice is the first two keys.
    let notice = g.lines("");
    let (first, second) = notice.split_once('\n').unwrap_or((&notice, ""));
    let doc = serde_json::json!({
        "__generated": first.trim(),
        "__generated_2": second.trim(),
        "uid": format!("scaleplan-{}", m.phase),
        "title": format!("scaleplan: {} capacity", m.phase),
        "tags": ["scaleplan", m.phase],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

pub(super) fn grafana_unit(unit: &str) -> &'static str {
    match unit {
        "bytes" => "bytes",
        "queries/s" | "ops/s" | "messages/s" => "ops",
        "cores" => "none",
        _ => "short",
    }
}

//! The generated monitoring, checked by the programs that read it:
//! promtool checks every Prometheus configuration and rule file and runs
//! the rules' unit tests (which set off each alert); the rules record the
//! very supply `scaleplan capacity` reports; Grafana's dashboard has a row
//! per resource.

use std::path::Path;
use std::process::Command;
use testkit::{repo, run_in, yaml_to_json};

const PHASES: [&str; 4] = ["launch", "growth", "scale", "enterprise"];

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs: scripts/test installs Debian's prometheus package");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} in {}:\n{text}",
        dir.display()
    );
    text
}

#[test]
fn promtool_accepts_every_config_and_rule_file_and_passes_the_rule_tests() {
    for phase in PHASES {
        let dir = repo().join("out").join(phase);
        let monitoring = dir.join("monitoring");
        let checked = promtool(&monitoring, &["check", "rules", "rules.yml"]);
        assert!(checked.contains("SUCCESS"), "{checked}");
        let tested = promtool(&monitoring, &["test", "rules", "rules.test.yml"]);
        assert!(tested.contains("SUCCESS"), "{tested}");
        for target in ["local", "compose"] {
            let at = dir.join(target).join("monitoring");
            let config = promtool(&at, &["check", "config", "prometheus.yml"]);
            assert!(config.contains("1 rule files found"), "{config}");
            // The rules each target runs are the ones tested.
            assert_eq!(
                std::fs::read_to_string(at.join("rules.yml")).unwrap(),
                std::fs::read_to_string(monitoring.join("rules.yml")).unwrap()
            );
        }
    }
}

/// The tests cover every alert the rules define.
#[test]
fn every_alert_has_a_test() {
    for phase in PHASES {
        let monitoring = repo().join("out").join(phase).join("monitoring");
        let rules = yaml_to_json(&std::fs::read_to_string(monitoring.join("rules.yml")).unwrap());
        let tests = std::fs::read_to_string(monitoring.join("rules.test.yml")).unwrap();
        for group in rules["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                if let Some(alert) = rule["alert"].as_str() {
                    assert!(
                        tests.contains(&format!("alertname: {alert}")),
                        "{phase}: no test of {alert}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_rules_record_the_capacity_the_model_reports() {
    let run = run_in(&repo(), &["--format", "json", "capacity"], &[]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for p in doc["phases"].as_array().unwrap() {
        let phase = p["phase"].as_str().unwrap();
        let rules = yaml_to_json(
            &std::fs::read_to_string(repo().join(format!("out/{phase}/monitoring/rules.yml")))
                .unwrap(),
        );
        let recorded: Vec<&serde_json::Value> = rules["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["record"] == "scaleplan:capacity")
            .collect();
        let lines = p["lines"].as_array().unwrap();
        assert_eq!(recorded.len(), lines.len(), "{phase}");
        for line in lines {
            let resource = line["resource"].as_str().unwrap();
            let rule = recorded
                .iter()
                .find(|r| r["labels"]["resource"] == resource)
                .unwrap_or_else(|| panic!("{phase}: {resource} not recorded"));
            let supply = line["supply"]["amount"].as_f64().unwrap();
            assert_eq!(
                rule["expr"].as_str().unwrap(),
                format!("vector({supply})"),
                "{phase} {resource}"
            );
        }
        // The capacity alerts name the phase and the next one's plan.
        let text =
            std::fs::read_to_string(repo().join(format!("out/{phase}/monitoring/rules.yml")))
                .unwrap();
        assert!(text.contains("ScaleplanCapacityWarning"), "{phase}");
        if phase != "enterprise" {
            assert!(
                text.contains(&format!("out/transitions/{phase}-to-")),
                "{phase}: alerts do not name the next transition"
            );
        }
    }
}

#[test]
fn the_dashboard_has_a_row_per_resource() {
    for phase in PHASES {
        let text =
            std::fs::read_to_string(repo().join(format!("out/{phase}/monitoring/dashboard.json")))
                .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows: Vec<&str> = doc["panels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "row")
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        assert!(
            rows.contains(&"WebSocket") && rows.contains(&"Redis memory"),
            "{rows:?}"
        );
        let compose = std::fs::read_to_string(repo().join(format!(
            "out/{phase}/compose/monitoring/grafana/dashboards/scaleplan.json"
        )))
        .unwrap();
        assert_eq!(compose, text, "Compose provisions the same dashboard");
    }
}

/// CloudWatch alarms use the thresholds the Prometheus rules use.
#[test]
fn cloudwatch_alarms_share_the_rules_thresholds() {
    for phase in PHASES {
        let main =
            std::fs::read_to_string(repo().join(format!("out/{phase}/terraform/main.tf"))).unwrap();
        let rules =
            std::fs::read_to_string(repo().join(format!("out/{phase}/monitoring/rules.yml")))
                .unwrap();
        assert!(main.contains("warning         = 70"), "{phase}");
        assert!(main.contains("critical        = 85"), "{phase}");
        assert!(rules.contains("> 0.7\""), "{phase}");
        assert!(rules.contains("> 0.85\""), "{phase}");
        let alarms = std::fs::read_to_string(
            repo().join(format!("out/{phase}/terraform/modules/region/alarms.tf")),
        )
        .unwrap();
        for metric in [
            "CPUUtilization",
            "EngineCPUUtilization",
            "BytesUsedForCache",
        ] {
            assert!(alarms.contains(metric), "{phase} lacks {metric}");
        }
    }
}

/// A phase with a queue Redis (tests/fixtures/queues `own`): its own
/// memory alert, on its own limit, fires in promtool's test; the phase's
/// Redis's capacity series leave it out.
#[test]
fn a_queue_redis_has_its_own_memory_alert() {
    let sandbox = testkit::Sandbox::with_phases(
        "queue-alerts",
        &testkit::spec_files(&repo().join("tests/fixtures/queues")),
    );
    let run = sandbox.run(&["build", "own"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let monitoring = sandbox.path("out/own/monitoring");
    let checked = promtool(&monitoring, &["check", "rules", "rules.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&monitoring, &["test", "rules", "rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let rules = yaml_to_json(&std::fs::read_to_string(monitoring.join("rules.yml")).unwrap());
    let all: Vec<&serde_json::Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let alert = all
        .iter()
        .find(|r| r["alert"] == "QueueRedisNearlyFull")
        .expect("the queue Redis's alert");
    assert!(
        alert["expr"]
            .as_str()
            .unwrap()
            .contains("redis_memory_max_bytes{node=\"redis-queues\"}")
    );
    let master = "redis_instance_info{role=\"master\",node!=\"redis-queues\"}";
    let capacity: Vec<&&serde_json::Value> = all
        .iter()
        .filter(|r| {
            r["expr"]
                .as_str()
                .unwrap()
                .contains("redis_memory_used_bytes and")
        })
        .collect();
    assert!(!capacity.is_empty());
    for r in capacity {
        assert!(r["expr"].as_str().unwrap().contains(master), "{r}");
    }
    let tests = std::fs::read_to_string(monitoring.join("rules.test.yml")).unwrap();
    assert!(tests.contains("QueueRedisNearlyFull"), "{tests}");
    // Prometheus scrapes it through the Redis exporter, on both targets.
    for target in ["local", "compose"] {
        let config = std::fs::read_to_string(
            sandbox.path(&format!("out/own/{target}/monitoring/prometheus.yml")),
        )
        .unwrap();
        assert!(config.contains("redis-queues"), "{target}: {config}");
    }
}

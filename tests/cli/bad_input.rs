//! One test per bad input: exit code 1, the stable code, the file:line:col,
//! nothing written, and a snapshot of the exact message.

use testkit::{Sandbox, repo};

fn check_bad(case: &str, code: &str, location: &str) {
    let fixtures = repo().join("tests/fixtures");
    let mut files = vec![fixtures.join("base.yaml")];
    let mut case_files: Vec<_> = std::fs::read_dir(fixtures.join("bad").join(case))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    case_files.sort();
    files.extend(case_files);
    let sandbox = Sandbox::with_phases(case, &files);

    let run = sandbox.run(&["build"]);
    assert_eq!(run.code, 1, "{case}: exit code\n{}", run.stderr);
    let expected = format!("error[{code}]: {location}:");
    assert!(
        run.stderr.contains(&expected),
        "{case}: expected `{expected}` in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("  help: "),
        "{case}: no help line:\n{}",
        run.stderr
    );
    assert!(!sandbox.path("out").exists(), "{case}: out/ was written");
    assert!(
        !run.stderr.contains("panicked"),
        "{case}: panic:\n{}",
        run.stderr
    );
    insta::assert_snapshot!(case, run.stderr);

    // The same problem, for machines.
    let json = sandbox.run(&["--format", "json", "validate"]);
    assert_eq!(json.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON diagnostics");
    let (file, rest) = location.split_once(':').unwrap();
    let (line, column) = rest.split_once(':').unwrap();
    let (line, column): (u64, u64) = (line.parse().unwrap(), column.parse().unwrap());
    let found = doc["diagnostics"].as_array().unwrap().iter().any(|d| {
        d["code"] == code
            && d["location"]["file"] == file
            && d["location"]["line"] == line
            && d["location"]["column"] == column
    });
    assert!(
        found,
        "{case}: JSON lacks {code} at {location}: {}",
        json.stdout
    );
}

macro_rules! bad_inputs {
    ($($test:ident: $case:literal => $code:literal at $location:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check_bad($case, $code, $location);
            }
        )*
    };
}

bad_inputs! {
    unknown_key: "unknown-key" => "SCH001" at "phases/phase.yaml:5:3";
    wrong_type: "wrong-type" => "SCH002" at "phases/phase.yaml:4:18";
    wrong_type_inside_an_optional_block: "optional-block-inner-type" => "SCH002" at "phases/phase.yaml:7:22";
    bad_enum_value: "bad-enum" => "SCH003" at "phases/phase.yaml:4:25";
    negative_count: "negative-count" => "SCH004" at "phases/phase.yaml:4:28";
    extends_cycle: "extends-cycle" => "EXT002" at "phases/a.yaml:1:10";
    missing_parent: "missing-parent" => "EXT001" at "phases/phase.yaml:1:10";
    yaml_syntax_error: "yaml-syntax" => "LOAD003" at "phases/phase.yaml:4:4";
    toml_syntax_error: "toml-syntax" => "LOAD004" at "phases/phase.toml:6:7";
    empty_file: "empty-file" => "LOAD005" at "phases/phase.yaml:1:1";
    invalid_utf8: "invalid-utf8" => "LOAD002" at "phases/phase.yaml:4:11";
    duplicate_mapping_key: "duplicate-key" => "LOAD006" at "phases/phase.yaml:6:3";
    toml_duplicate_key: "toml-duplicate-key" => "LOAD006" at "phases/phase.toml:7:1";
    pool_overflow: "pool-overflow" => "PGB002" at "phases/phase.yaml:6:22";
    global_datastore_without_a_secondary_region: "global-datastore-alone" => "REG003" at "phases/phase.yaml:6:55";
    global_datastore_beside_a_regions_own_redis: "global-datastore-own-redis" => "REG004" at "phases/phase.yaml:12:12";
    pool_overflow_with_a_secondary_region: "pool-overflow-regions" => "PGB002" at "phases/phase.yaml:10:22";
    max_client_conn_below_pool: "max-client-below-pool" => "PGB001" at "phases/phase.yaml:4:54";
    quorum_above_sentinel_count: "quorum-above-count" => "RED003" at "phases/phase.yaml:7:33";
    two_shard_cluster: "two-shard-cluster" => "RED006" at "phases/phase.yaml:6:22";
    duplicate_phase_name: "duplicate-phase-name" => "PHASE002" at "phases/two.yaml:2:7";
    duplicate_phase_order: "duplicate-order" => "PHASE003" at "phases/two.yaml:2:8";
    newline_into_config_value: "newline-injection" => "SAFE001" at "phases/phase.yaml:6:22";
    newline_into_comment: "newline-in-title" => "SAFE001" at "phases/phase.yaml:4:8";
    name_escaping_out_dir: "path-escape" => "NAME001" at "phases/phase.yaml:2:7";
    nul_byte_would_cut_the_spec_short: "nul-byte" => "LOAD010" at "phases/phase.yaml:4:1";
    integer_past_i64_located: "huge-integer" => "LOAD008" at "phases/phase.yaml:3:23";
    integer_past_its_field_located: "integer-past-u32" => "SCH004" at "phases/phase.yaml:3:23";
    yaml_alias_bomb: "alias-bomb" => "LOAD007" at "phases/phase.yaml:8:36";
    deep_flow_nesting: "deep-nesting" => "LOAD007" at "phases/phase.yaml:4:263";
    deep_block_nesting: "deep-block-nesting" => "LOAD007" at "phases/phase.yaml:68:68";
    unknown_postgres_parameter: "unknown-parameter" => "PG001" at "phases/phase.yaml:6:5";
    archiving_set_by_a_parameter: "archive-parameter" => "PG002" at "phases/phase.yaml:6:5";
    cloud_read_host_list_on_an_old_pgbouncer: "cloud-read-host-list" => "PGB006" at "phases/phase.yaml:5:23";
    backup_window_under_30_minutes: "short-backup-window" => "PG003" at "phases/phase.yaml:5:41";
    backup_window_not_a_window: "bad-backup-window" => "SCH005" at "phases/phase.yaml:6:13";
    inherited_sentinel_block_in_cluster_mode: "sentinel-block-in-cluster" => "RED009" at "phases/parent.yaml:7:3";
    users_min_above_max: "users-reversed" => "PHASE001" at "phases/phase.yaml:3:15";
    cluster_mode_from_a_redis_elasticache_cannot_convert: "cluster-from-lone-redis" => "TRN004" at "phases/two.yaml:5:9";
    queues_moving_in_a_redis_mode_change: "queues-and-mode" => "TRN005" at "phases/two.yaml:8:14";
    redis_moving_backwards: "redis-backwards" => "TRN001" at "phases/two.yaml:4:16";
    capacity_loss_between_phases: "capacity-loss" => "TRN002" at "phases/two.yaml:4:28";
    capacity_below_users_max: "capacity-below-target" => "CAP001" at "phases/phase.yaml:3:25";
    pools_above_pgbouncer_clients: "pool-clients" => "CAP002" at "phases/phase.yaml:5:68";
    zero_workload_figure: "zero-workload" => "SCH004" at "phases/phase.yaml:5:16";
    negative_workload_figure: "negative-workload" => "SCH004" at "phases/phase.yaml:4:40";
    error_located_in_the_parent_that_set_it: "error-in-parent" => "RED008" at "phases/parent.yaml:4:24";
    notifications_on_a_service: "notifications-on-service" => "NTF001" at "phases/phase.yaml:9:5";
}

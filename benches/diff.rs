//! Diff on large renderings: two artifact sets of N lines with scattered
//! changes, at several sizes, reported as time per line relative to the
//! smallest size measured in the same run (1.0 = linear growth).
//!
//! Run: cargo bench --bench diff

use scaleplan::compare::diff::diff_artifacts;
use scaleplan::render::artifacts::Artifacts;
use std::time::{Duration, Instant};

/// `files` files of `lines` config-like lines each; in the changed set,
/// every 97th line of every file differs and every 10th file gains a line.
fn artifact_sets(files: usize, lines: usize) -> (Artifacts, Artifacts) {
    let mut old = Artifacts::default();
    let mut new = Artifacts::default();
    for f in 0..files {
        let mut a = String::new();
        let mut b = String::new();
        for l in 0..lines {
            let line = format!("setting_{f}_{l} = {}\n", (f * 7919 + l * 104_729) % 100_003);
            a.push_str(&line);
            if l % 97 == 13 {
                b.push_str(&format!("setting_{f}_{l} = changed\n"));
            } else {
                b.push_str(&line);
            }
        }
        if f % 10 == 0 {
            b.push_str("added_line = 1\n");
        }
        old.insert(format!("phase/file-{f:04}.conf"), a);
        new.insert(format!("phase/file-{f:04}.conf"), b);
    }
    (old, new)
}

/// Median of several runs, for a number that a busy machine barely moves.
fn measure(old: &Artifacts, new: &Artifacts) -> Duration {
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let d = diff_artifacts(old, new, 3, &|_| true);
            let t = start.elapsed();
            assert!(d.summary.changed > 0);
            t
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let sizes = [(20, 500), (100, 500), (100, 1000), (200, 1000)];
    let mut baseline: Option<f64> = None;
    println!(
        "{:>10} {:>12} {:>14} {:>20}",
        "lines", "median", "ns per line", "per line vs first"
    );
    for (files, lines) in sizes {
        let (old, new) = artifact_sets(files, lines);
        let total = files * lines;
        let t = measure(&old, &new);
        let per_line = t.as_nanos() as f64 / total as f64;
        let base = *baseline.get_or_insert(per_line);
        println!(
            "{total:>10} {:>10.1}ms {per_line:>14.1} {:>20.2}",
            t.as_secs_f64() * 1000.0,
            per_line / base
        );
    }
}

//! Comparing two renderings file by file, and two merged specs value by
//! value. Both sides are `Artifacts` in memory: no command's output on disk
//! is needed.

use crate::render::artifacts::Artifacts;
use crate::render::notice::mask;
use serde::Serialize;
use similar::{Algorithm, ChangeTag, TextDiff};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Changed,
    Renamed,
    Unchanged,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Line {
    /// ' ', '+' or '-'.
    pub tag: char,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hunk {
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<Line>,
}

impl Hunk {
    pub fn header(&self) -> String {
        format!(
            "@@ -{},{} +{},{} @@",
            self.old_start, self.old_lines, self.new_start, self.new_lines
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub status: Status,
    /// The old path of a renamed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub added: usize,
    pub removed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<Hunk>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub renamed: usize,
    pub unchanged: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ArtifactDiff {
    pub summary: Summary,
    /// Every file except unchanged ones, by path.
    pub files: Vec<FileDiff>,
}

impl ArtifactDiff {
    pub fn has_changes(&self) -> bool {
        !self.files.is_empty()
    }
}

/// Line diff of two texts: Patience with a deadline, so even a pathological
/// pair of large files returns (with a coarser diff) in bounded time.
pub fn diff_text(old: &str, new: &str, context: usize) -> (Vec<Hunk>, usize, usize) {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .timeout(Duration::from_millis(500))
        .diff_lines(old, new);
    let mut hunks = Vec::new();
    let (mut added, mut removed) = (0, 0);
    for group in diff.grouped_ops(context) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let mut lines = Vec::new();
        for op in &group {
            for change in diff.iter_changes(op) {
                let tag = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Insert => {
                        added += 1;
                        '+'
                    }
                    ChangeTag::Delete => {
                        removed += 1;
                        '-'
                    }
                };
                let mut text = change.to_string_lossy().into_owned();
                if text.ends_with('\n') {
                    text.pop();
                }
                lines.push(Line { tag, text });
            }
        }
        // Unified diff numbers lines from 1; an empty range starts at the
        // line before it.
        let start = |r: &std::ops::Range<usize>| if r.is_empty() { r.start } else { r.start + 1 };
        hunks.push(Hunk {
            old_start: start(&old_range),
            old_lines: old_range.len(),
            new_start: start(&new_range),
            new_lines: new_range.len(),
            lines,
        });
    }
    (hunks, added, removed)
}

/// Compares two renderings. `only` keeps the paths it accepts.
pub fn diff_artifacts(
    old: &Artifacts,
    new: &Artifacts,
    context: usize,
    only: &dyn Fn(&str) -> bool,
) -> ArtifactDiff {
    let mut out = ArtifactDiff::default();
    let mut added: Vec<(&str, &str)> = Vec::new();
    let mut removed: Vec<(&str, &str)> = Vec::new();
    for (path, old_text) in old.iter().filter(|(p, _)| only(p)) {
        match new.get(path) {
            None => removed.push((path, old_text)),
            Some(new_text) => {
                let (a, b) = (mask(old_text), mask(new_text));
                if a == b {
                    out.summary.unchanged += 1;
                    continue;
                }
                let (hunks, plus, minus) = diff_text(&a, &b, context);
                out.summary.changed += 1;
                out.files.push(FileDiff {
                    path: path.to_owned(),
                    status: Status::Changed,
                    from: None,
                    added: plus,
                    removed: minus,
                    hunks,
                });
            }
        }
    }
    for (path, text) in new.iter().filter(|(p, _)| only(p)) {
        if old.get(path).is_none() {
            added.push((path, text));
        }
    }
    // A file that moved without changing is a rename, not a removal and an
    // addition.
    let mut renamed_from = std::collections::BTreeSet::new();
    for (path, text) in &added {
        let masked = mask(text);
        let twin = removed.iter().find(|(old_path, old_text)| {
            !renamed_from.contains(old_path) && mask(old_text) == masked
        });
        match twin {
            Some((old_path, _)) => {
                renamed_from.insert(*old_path);
                out.summary.renamed += 1;
                out.files.push(FileDiff {
                    path: (*path).to_owned(),
                    status: Status::Renamed,
                    from: Some((*old_path).to_owned()),
                    added: 0,
                    removed: 0,
                    hunks: Vec::new(),
                });
            }
            None => {
                let (hunks, plus, _) = diff_text("", &mask(text), context);
                out.summary.added += 1;
                out.files.push(FileDiff {
                    path: (*path).to_owned(),
                    status: Status::Added,
                    from: None,
                    added: plus,
                    removed: 0,
                    hunks,
                });
            }
        }
    }
    for (path, text) in removed.iter().filter(|(p, _)| !renamed_from.contains(p)) {
        let (hunks, _, minus) = diff_text(&mask(text), "", context);
        out.summary.removed += 1;
        out.files.push(FileDiff {
            path: (*path).to_owned(),
            status: Status::Removed,
            from: None,
            added: 0,
            removed: minus,
            hunks,
        });
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// One changed value of the merged spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecChange {
    /// Dotted path, e.g. `redis.mode`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
}

impl SpecChange {
    pub fn describe(&self) -> String {
        let show = |v: &Option<serde_json::Value>| match v {
            None => "(unset)".to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        format!("{}: {} -> {}", self.path, show(&self.old), show(&self.new))
    }
}

/// Every leaf that differs between two merged specs (with defaults), in
/// document order. Lists compare by index.
pub fn spec_changes(old: &serde_json::Value, new: &serde_json::Value) -> Vec<SpecChange> {
    let mut out = Vec::new();
    walk(old, new, String::new(), &mut out);
    out
}

fn walk(old: &serde_json::Value, new: &serde_json::Value, path: String, out: &mut Vec<SpecChange>) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => walk(va, vb, join(k), out),
                    None => out.push(SpecChange {
                        path: join(k),
                        old: Some(va.clone()),
                        new: None,
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(SpecChange {
                        path: join(k),
                        old: None,
                        new: Some(vb.clone()),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(x, y, p, out),
                    (x, y) => out.push(SpecChange {
                        path: p,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        (a, b) if a != b => out.push(SpecChange {
            path,
            old: Some(a.clone()),
            new: Some(b.clone()),
        }),
        _ => {}
    }
}

/// Glob over '/'-separated paths: `*` and `?` stay within a segment, `**`
/// crosses segments.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn segs<'a>(p: &[&'a str], s: &[&'a str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => segs(&p[1..], s) || (!s.is_empty() && segs(p, &s[1..])),
            (Some(pp), Some(ss)) => seg(pp.as_bytes(), ss.as_bytes()) && segs(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn seg(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => seg(&p[1..], s) || (!s.is_empty() && seg(p, &s[1..])),
            (Some(b'?'), Some(_)) => seg(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => seg(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segs(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts(files: &[(&str, &str)]) -> Artifacts {
        let mut a = Artifacts::default();
        for (p, t) in files {
            a.insert((*p).to_owned(), (*t).to_owned());
        }
        a
    }

    #[test]
    fn statuses_counts_and_renames() {
        let old = artifacts(&[
            ("a.conf", "x\ny\n"),
            ("same", "s\n"),
            ("gone", "g\n"),
            ("moved/old", "m\n"),
        ]);
        let new = artifacts(&[
            ("a.conf", "x\nz\n"),
            ("same", "s\n"),
            ("new", "n\n"),
            ("moved/new", "m\n"),
        ]);
        let d = diff_artifacts(&old, &new, 3, &|_| true);
        assert_eq!(
            d.summary,
            Summary {
                added: 1,
                removed: 1,
                changed: 1,
                renamed: 1,
                unchanged: 1
            }
        );
        let changed = d.files.iter().find(|f| f.path == "a.conf").unwrap();
        assert_eq!((changed.added, changed.removed), (1, 1));
        assert_eq!(changed.hunks[0].header(), "@@ -1,2 +1,2 @@");
        let renamed = d
            .files
            .iter()
            .find(|f| f.status == Status::Renamed)
            .unwrap();
        assert_eq!(
            (renamed.path.as_str(), renamed.from.as_deref()),
            ("moved/new", Some("moved/old"))
        );
    }

    #[test]
    fn the_generated_notice_is_not_compared() {
        let old = artifacts(&[(
            "f",
            "# Generated by scaleplan from a.yaml (no parent). Do not edit:\n# change the spec. Phase a: A.\nport 1\n",
        )]);
        let new = artifacts(&[(
            "f",
            "# Generated by scaleplan from b.yaml (no parent). Do not edit:\n# change the spec. Phase b: B.\nport 1\n",
        )]);
        assert!(!diff_artifacts(&old, &new, 3, &|_| true).has_changes());
    }

    #[test]
    fn context_lines_are_bounded() {
        let old: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 50\n", "line fifty\n");
        let (hunks, added, removed) = diff_text(&old, &new, 2);
        assert_eq!((hunks.len(), added, removed), (1, 1, 1));
        assert_eq!(hunks[0].lines.len(), 6);
        assert_eq!(hunks[0].header(), "@@ -49,5 +49,5 @@");
    }

    #[test]
    fn spec_changes_name_each_leaf() {
        let a = serde_json::json!({"redis": {"mode": "sentinel", "sentinel": {"count": 3}}, "list": [1, 2]});
        let b = serde_json::json!({"redis": {"mode": "cluster", "cluster": {"shards": 3}}, "list": [1]});
        let changes: Vec<String> = spec_changes(&a, &b)
            .iter()
            .map(SpecChange::describe)
            .collect();
        assert_eq!(
            changes,
            [
                "redis.mode: sentinel -> cluster",
                "redis.sentinel: {\"count\":3} -> (unset)",
                "redis.cluster: (unset) -> {\"shards\":3}",
                "list[1]: 2 -> (unset)"
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("compose/**", "compose/redis/redis-1/redis.conf"));
        assert!(glob_match(
            "**/*.ini",
            "local/pgbouncer/pgbouncer-1/pgbouncer.ini"
        ));
        assert!(glob_match(
            "*/docker-compose.yml",
            "compose/docker-compose.yml"
        ));
        assert!(!glob_match(
            "*.ini",
            "local/pgbouncer/pgbouncer-1/pgbouncer.ini"
        ));
        assert!(glob_match("redis-?", "redis-1"));
        assert!(!glob_match("redis-?", "redis-10"));
    }
}

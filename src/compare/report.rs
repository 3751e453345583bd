//! Presenting a comparison of two phases: text for a terminal, Markdown for
//! a pull-request comment, JSON for other tools; and the transition notes
//! `build` writes under out/transitions/.

use super::diagram::ChangeDiagrams;
use super::diff::{ArtifactDiff, FileDiff, SpecChange, Status, Summary};
use crate::transition::Plan;
use serde::Serialize;
use std::fmt::Write;

/// One phase compared with another (or the same phase on two branches).
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Phase names; None where one side has no such phase.
    pub from: Option<String>,
    pub to: Option<String>,
    pub summary: Summary,
    pub files: Vec<FileDiff>,
    pub spec_changes: Vec<SpecChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Mermaid, for the Markdown report and the transition notes.
    #[serde(skip)]
    pub diagrams: Option<ChangeDiagrams>,
}

impl Comparison {
    pub fn new(
        from: Option<String>,
        to: Option<String>,
        files: ArtifactDiff,
        spec_changes: Vec<SpecChange>,
        plan: Option<Plan>,
    ) -> Self {
        Comparison {
            from,
            to,
            summary: files.summary,
            files: files.files,
            spec_changes,
            plan,
            diagrams: None,
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.files.is_empty() || !self.spec_changes.is_empty()
    }

    fn title(&self) -> String {
        match (&self.from, &self.to) {
            (Some(a), Some(b)) if a == b => a.clone(),
            (Some(a), Some(b)) => format!("{a} -> {b}"),
            (Some(a), None) => format!("{a} (removed)"),
            (None, Some(b)) => format!("{b} (added)"),
            (None, None) => String::new(),
        }
    }

    fn counts(&self) -> String {
        let s = &self.summary;
        format!(
            "{} added, {} removed, {} changed, {} renamed, {} unchanged",
            s.added, s.removed, s.changed, s.renamed, s.unchanged
        )
    }
}

fn status_word(f: &FileDiff) -> String {
    match (&f.status, &f.from) {
        (Status::Renamed, Some(from)) => format!("renamed from {from}"),
        (status, _) => serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn file_patch(f: &FileDiff, paint: &Paint, out: &mut String) {
    let (a, b) = match f.status {
        Status::Added => ("/dev/null".to_owned(), format!("b/{}", f.path)),
        Status::Removed => (format!("a/{}", f.path), "/dev/null".to_owned()),
        _ => (
            format!("a/{}", f.from.as_deref().unwrap_or(&f.path)),
            format!("b/{}", f.path),
        ),
    };
    let _ = writeln!(out, "{}", paint.wrap("1", &format!("--- {a}")));
    let _ = writeln!(out, "{}", paint.wrap("1", &format!("+++ {b}")));
    for hunk in &f.hunks {
        let _ = writeln!(out, "{}", paint.wrap("36", &hunk.header()));
        for line in &hunk.lines {
            let text = format!("{}{}", line.tag, line.text);
            let _ = writeln!(
                out,
                "{}",
                match line.tag {
                    '+' => paint.wrap("32", &text),
                    '-' => paint.wrap("31", &text),
                    _ => text,
                }
            );
        }
    }
}

pub fn text(comparisons: &[Comparison], stat: bool, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    for c in comparisons {
        let _ = writeln!(
            out,
            "{}",
            paint.wrap("1", &format!("diff {}: {}", c.title(), c.counts()))
        );
        if !c.has_changes() {
            let _ = writeln!(out, "no changes");
            continue;
        }
        if !c.spec_changes.is_empty() {
            let _ = writeln!(out, "\nspec changes:");
            for s in &c.spec_changes {
                let _ = writeln!(out, "  {}", s.describe());
            }
        }
        if let Some(plan) = &c.plan {
            let _ = writeln!(
                out,
                "\ncapacity: {} concurrent users",
                plan.capacity.describe()
            );
            let _ = writeln!(
                out,
                "\ntransition plan (highest risk: {}):",
                plan.highest_risk().label()
            );
            for (i, s) in plan.steps.iter().enumerate() {
                let flag = if s.capacity_loss {
                    " [capacity loss]"
                } else {
                    ""
                };
                let _ = writeln!(out, "  {}. [{}]{flag} {}", i + 1, s.risk.label(), s.title);
                let _ = writeln!(out, "     {}", s.why);
                if let Some(reason) = &s.not_native {
                    let _ = writeln!(out, "     not run by `scaleplan migrate`: {reason}");
                }
                for cmd in &s.compose {
                    let _ = writeln!(out, "     compose: {cmd}");
                }
            }
        }
        let _ = writeln!(out, "\nfiles:");
        if stat {
            let width = c.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
            for f in &c.files {
                let _ = writeln!(
                    out,
                    "  {:<width$} | {} {} ({})",
                    f.path,
                    paint.wrap("32", &format!("+{}", f.added)),
                    paint.wrap("31", &format!("-{}", f.removed)),
                    status_word(f)
                );
            }
        } else {
            for f in &c.files {
                if f.status == Status::Renamed {
                    let _ = writeln!(
                        out,
                        "{}",
                        paint.wrap(
                            "1",
                            &format!("renamed: {} -> {}", f.from.as_deref().unwrap_or(""), f.path)
                        )
                    );
                } else {
                    file_patch(f, &paint, &mut out);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// GitHub refuses comments over 65,536 characters; stay well below.
pub const MARKDOWN_CAP: usize = 60_000;

/// Table cells: a '|' would end the cell and a '<' could open HTML; a '>'
/// inside a cell is plain text, so "a -> b" stays readable in the source.
fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;")
}

fn plan_markdown(plan: &Plan, out: &mut String) {
    plan_table(plan, out);
    let with_commands: Vec<(usize, &crate::transition::Step)> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.compose.is_empty())
        .collect();
    if !with_commands.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Compose commands, step by step</summary>\n"
        );
        for (i, s) in with_commands {
            let _ = writeln!(out, "{}. {}\n", i + 1, md_escape(&s.title));
            let _ = writeln!(out, "   ```sh");
            for cmd in &s.compose {
                let _ = writeln!(out, "   {cmd}");
            }
            let _ = writeln!(out, "   ```\n");
        }
        let _ = writeln!(out, "</details>");
    }
}

fn plan_table(plan: &Plan, out: &mut String) {
    let _ = writeln!(out, "| # | step | risk | why |\n|---|---|---|---|");
    for (i, s) in plan.steps.iter().enumerate() {
        let flag = if s.capacity_loss {
            " ⚠ capacity loss"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}{flag} | {} |",
            i + 1,
            md_escape(&s.title),
            s.risk.label(),
            md_escape(&s.why)
        );
    }
}

fn spec_markdown(c: &Comparison, out: &mut String) {
    let (a, b) = (
        c.from.as_deref().unwrap_or("before"),
        c.to.as_deref().unwrap_or("after"),
    );
    let (a, b) = if a == b { ("before", "after") } else { (a, b) };
    let _ = writeln!(out, "| value | {a} | {b} |\n|---|---|---|");
    let show = |v: &Option<serde_json::Value>| match v {
        None => "_unset_".to_owned(),
        Some(serde_json::Value::String(s)) => format!("`{}`", md_escape(s)),
        Some(other) => format!("`{}`", md_escape(&other.to_string())),
    };
    for s in &c.spec_changes {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            s.path,
            show(&s.old),
            show(&s.new)
        );
    }
}

pub fn markdown(comparisons: &[Comparison], stat: bool, cap: usize) -> String {
    let mut out = String::new();
    let mut omitted = 0;
    for c in comparisons {
        let _ = writeln!(out, "### scaleplan diff: {}\n", md_escape(&c.title()));
        let s = &c.summary;
        let _ = writeln!(
            out,
            "| added | removed | changed | renamed | unchanged |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
            s.added, s.removed, s.changed, s.renamed, s.unchanged
        );
        if !c.has_changes() {
            let _ = writeln!(out, "No changes.\n");
            continue;
        }
        if !c.spec_changes.is_empty() {
            let _ = writeln!(out, "**Spec changes**\n");
            spec_markdown(c, &mut out);
            out.push('\n');
        }
        if let Some(plan) = &c.plan {
            let _ = writeln!(
                out,
                "**Capacity**: {} concurrent users\n",
                plan.capacity.describe()
            );
            let _ = writeln!(
                out,
                "**Transition plan** (highest risk: {})\n",
                plan.highest_risk().label()
            );
            plan_markdown(plan, &mut out);
            out.push('\n');
        }
        if let Some(d) = &c.diagrams {
            let _ = writeln!(
                out,
                "**Architecture** (added: green outline; changed: amber; removed: dashed red)\n\n```mermaid\n{}```\n",
                d.architecture
            );
            let _ = writeln!(
                out,
                "**Rollout** (coloured by risk)\n\n```mermaid\n{}```\n",
                d.flow
            );
        }
        let _ = writeln!(out, "**Files**\n");
        for f in &c.files {
            let line = format!(
                "- `{}` {} (+{} -{})\n",
                f.path,
                status_word(f),
                f.added,
                f.removed
            );
            let section = if stat || f.status == Status::Renamed {
                line
            } else {
                let mut patch = String::new();
                file_patch(f, &Paint(false), &mut patch);
                // A fence longer than any run of backticks in the patch.
                let fence = "`".repeat(
                    patch
                        .split(|c| c != '`')
                        .map(str::len)
                        .max()
                        .unwrap_or(0)
                        .max(2)
                        + 1,
                );
                format!(
                    "<details><summary><code>{}</code> {} (+{} -{})</summary>\n\n{fence}diff\n{patch}{fence}\n\n</details>\n\n",
                    md_escape(&f.path),
                    md_escape(&status_word(f)),
                    f.added,
                    f.removed
                )
            };
            if out.len() + section.len() > cap {
                omitted += 1;
                continue;
            }
            out.push_str(&section);
        }
        out.push('\n');
    }
    if omitted > 0 {
        let _ = writeln!(
            out,
            "> {omitted} file section(s) left out to keep this comment under {cap} characters; run `scaleplan diff` locally for all of them."
        );
    }
    out
}

/// `diff --format json`: one document.
#[derive(Serialize)]
struct DiffDoc<'a> {
    changes: bool,
    comparisons: &'a [Comparison],
}

pub fn json(comparisons: &[Comparison]) -> String {
    let doc = DiffDoc {
        changes: comparisons.iter().any(Comparison::has_changes),
        comparisons,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// What out/transitions/<from>-to-<to>.md shows (templates/docs/transition.md).
#[derive(Serialize)]
pub struct NoteCtx<'a> {
    from: &'a str,
    to: &'a str,
    counts: String,
    spec_changes: Vec<NoteChange<'a>>,
    plan: Option<NotePlan<'a>>,
    /// Mermaid built by the diagram module, not spec text.
    architecture: Option<minijinja::Value>,
    flow: Option<minijinja::Value>,
}

#[derive(Serialize)]
struct NoteChange<'a> {
    path: &'a str,
    /// Compact JSON of the value; None where it is unset.
    old: Option<String>,
    new: Option<String>,
}

#[derive(Serialize)]
struct NotePlan<'a> {
    capacity: String,
    highest_risk: &'static str,
    steps: Vec<NoteStep<'a>>,
}

#[derive(Serialize)]
struct NoteStep<'a> {
    title: &'a str,
    risk: &'static str,
    capacity_loss: bool,
    why: &'a str,
    /// Why `scaleplan migrate` does not carry it out, when it does not.
    not_native: Option<&'a str>,
    compose: &'a [String],
}

impl<'a> NoteCtx<'a> {
    pub fn new(c: &'a Comparison) -> NoteCtx<'a> {
        let show = |v: &Option<serde_json::Value>| match v {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        NoteCtx {
            from: c.from.as_deref().unwrap_or(""),
            to: c.to.as_deref().unwrap_or(""),
            counts: c.counts(),
            spec_changes: c
                .spec_changes
                .iter()
                .map(|s| NoteChange {
                    path: &s.path,
                    old: show(&s.old),
                    new: show(&s.new),
                })
                .collect(),
            plan: c.plan.as_ref().map(|p| NotePlan {
                capacity: p.capacity.describe(),
                highest_risk: p.highest_risk().label(),
                steps: p
                    .steps
                    .iter()
                    .map(|s| NoteStep {
                        title: &s.title,
                        risk: s.risk.label(),
                        capacity_loss: s.capacity_loss,
                        why: &s.why,
                        not_native: s.not_native.as_deref(),
                        compose: &s.compose,
                    })
                    .collect(),
            }),
            architecture: c
                .diagrams
                .as_ref()
                .map(|d| minijinja::Value::from_safe_string(d.architecture.clone())),
            flow: c
                .diagrams
                .as_ref()
                .map(|d| minijinja::Value::from_safe_string(d.flow.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::artifacts::Artifacts;

    fn comparison(files: usize, lines: usize) -> Comparison {
        let (mut a, mut b) = (Artifacts::default(), Artifacts::default());
        for f in 0..files {
            let text: String = (0..lines).map(|l| format!("line {l}\n")).collect();
            a.insert(format!("f{f}.conf"), text.clone());
            b.insert(format!("f{f}.conf"), text.replace("line 1\n", "line one\n"));
        }
        let files = crate::compare::diff::diff_artifacts(&a, &b, 3, &|_| true);
        Comparison::new(Some("a".into()), Some("b".into()), files, Vec::new(), None)
    }

    #[test]
    fn markdown_stops_before_the_size_cap_and_says_so() {
        let c = comparison(50, 20);
        let full = markdown(std::slice::from_ref(&c), false, usize::MAX);
        assert_eq!(full.matches("<details>").count(), 50);
        let capped = markdown(std::slice::from_ref(&c), false, 2_000);
        assert!(capped.len() < 2_600, "{}", capped.len());
        let shown = capped.matches("<details>").count();
        assert!(shown > 0 && shown < 50, "{shown}");
        assert!(
            capped.contains(&format!("> {} file section(s) left out", 50 - shown)),
            "{capped}"
        );
    }

    #[test]
    fn fences_outlast_backticks_in_the_patch() {
        let mut a = Artifacts::default();
        let mut b = Artifacts::default();
        a.insert("x.md".into(), "```\n".into());
        b.insert("x.md".into(), "````\n".into());
        let files = crate::compare::diff::diff_artifacts(&a, &b, 3, &|_| true);
        let md = markdown(
            &[Comparison::new(None, None, files, Vec::new(), None)],
            false,
            usize::MAX,
        );
        assert!(md.contains("`````diff"), "{md}");
    }
}

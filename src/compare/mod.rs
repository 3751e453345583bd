//! Stage 6, compare: two phases rendered in memory, then compared file by
//! file and value by value, with the transition plan between them, and the
//! reports of a comparison (text, Markdown, JSON, the transition notes).

pub mod diagram;
pub mod diff;
pub mod report;

use crate::plan::layout::TransitionFile;
use crate::plan::{Planned, PlannedPhase};
use crate::render::Renderer;
use crate::render::artifacts::Artifacts;
use crate::render::notice::Generated;
use crate::render::templates as t;
use report::Comparison;

/// Spec keys that name a phase rather than configure it: comparing two
/// phases always changes them, so they are left out of the spec changes.
const NAMING_KEYS: [&str; 4] = ["name", "title", "order", "extends"];

fn spec_value(phase: &PlannedPhase) -> serde_json::Value {
    let mut value = serde_json::to_value(phase.spec()).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in NAMING_KEYS {
            map.remove(key);
        }
    }
    value
}

#[derive(serde::Serialize)]
struct RoadmapCtx {
    diagram: minijinja::Value,
    transitions: Vec<(String, String)>,
}

pub struct Options<'a> {
    pub context: usize,
    pub only: &'a dyn Fn(&str) -> bool,
}

/// One phase against another; either side may be missing (a phase added or
/// removed between two directories).
pub fn compare(
    from: Option<&PlannedPhase>,
    to: Option<&PlannedPhase>,
    renderer: &Renderer,
    opts: &Options,
) -> anyhow::Result<Comparison> {
    let render = |p: Option<&PlannedPhase>| -> anyhow::Result<Artifacts> {
        p.map_or_else(|| Ok(Artifacts::default()), |p| renderer.render_phase(p))
    };
    Ok(compare_rendered(
        from.zip(Some(&render(from)?)),
        to.zip(Some(&render(to)?)),
        opts,
    ))
}

/// The same, for phases already rendered.
pub fn compare_rendered(
    from: Option<(&PlannedPhase, &Artifacts)>,
    to: Option<(&PlannedPhase, &Artifacts)>,
    opts: &Options,
) -> Comparison {
    let empty = Artifacts::default();
    let files = diff::diff_artifacts(
        from.map_or(&empty, |(_, a)| a),
        to.map_or(&empty, |(_, a)| a),
        opts.context,
        opts.only,
    );
    let (from, to) = (from.map(|(p, _)| p), to.map(|(p, _)| p));
    let spec_changes = match (from, to) {
        (Some(a), Some(b)) => diff::spec_changes(&spec_value(a), &spec_value(b)),
        _ => Vec::new(),
    };
    let plan = match (from, to) {
        (Some(a), Some(b)) => Some(crate::transition::plan(a, b)),
        _ => None,
    };
    let diagrams = match (from, to, &plan) {
        (Some(a), Some(b), Some(plan)) => Some(diagram::change(a, b, plan)),
        _ => None,
    };
    let mut c = Comparison::new(
        from.map(|p| p.name().to_owned()),
        to.map(|p| p.name().to_owned()),
        files,
        spec_changes,
        plan,
    );
    c.diagrams = diagrams;
    c
}

/// The same phases in two directories (a pull request's phases/ against
/// main's), paired by name, in the newer side's order.
pub fn compare_dirs(
    old: &Planned,
    new: &Planned,
    renderer: &Renderer,
    opts: &Options,
) -> anyhow::Result<Vec<Comparison>> {
    let mut out = Vec::new();
    for phase in &new.phases {
        let before = old.get(phase.name());
        out.push(compare(before, Some(phase), renderer, opts)?);
    }
    for phase in &old.phases {
        if new.get(phase.name()).is_none() {
            out.push(compare(Some(phase), None, renderer, opts)?);
        }
    }
    Ok(out)
}

/// transitions/<from>-to-<to>.md (and its flow as .mmd) for each pair of
/// consecutive phases, from the renderings `build` already made, and the
/// roadmap of them all (README.md, roadmap.mmd).
pub fn transition_notes(
    planned: &Planned,
    rendered: &[(&str, Artifacts)],
    renderer: &Renderer,
) -> anyhow::Result<Artifacts> {
    let mut files = Artifacts::default();
    let all = |_: &str| true;
    let opts = Options {
        context: 0,
        only: &all,
    };
    let files_of = |p: &PlannedPhase| {
        rendered
            .iter()
            .find(|(n, _)| *n == p.name())
            .map(|(_, a)| a)
    };
    let mut plans = Vec::new();
    for pair in planned.phases.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(fa), Some(fb)) = (files_of(a), files_of(b)) else {
            continue;
        };
        let c = compare_rendered(Some((a, fa)), Some((b, fb)), &opts);
        let generated = Generated::transition(
            (a.name(), &a.phase.file_names[0]),
            (b.name(), &b.phase.file_names[0]),
        );
        files.insert(
            TransitionFile::Note {
                from: a.name(),
                to: b.name(),
            }
            .rel(),
            renderer.render(t::TRANSITION_NOTE, &generated, report::NoteCtx::new(&c))?,
        );
        if let Some(d) = &c.diagrams {
            files.insert(
                TransitionFile::Flow {
                    from: a.name(),
                    to: b.name(),
                }
                .rel(),
                format!("{}\n{}", generated.lines("%%"), d.flow),
            );
        }
        plans.extend(c.plan);
    }
    let roadmap = diagram::roadmap(&planned.phases, &plans);
    roadmap
        .check()
        .map_err(|e| anyhow::anyhow!("the roadmap diagram: {e}"))?;
    let roadmap = roadmap.to_mermaid();
    let generated = Generated {
        sources: planned
            .phases
            .iter()
            .map(|p| p.phase.file_names[0].as_str())
            .collect::<Vec<_>>()
            .join(", "),
        subject: "Roadmap".to_owned(),
    };
    files.insert(
        TransitionFile::Roadmap.rel(),
        format!("{}\n{roadmap}", generated.lines("%%")),
    );
    files.insert(
        TransitionFile::Readme.rel(),
        renderer.render(
            t::ROADMAP,
            &generated,
            RoadmapCtx {
                diagram: minijinja::Value::from_safe_string(roadmap),
                transitions: plans
                    .iter()
                    .map(|p| (p.from.clone(), p.to.clone()))
                    .collect(),
            },
        )?,
    );
    Ok(files)
}

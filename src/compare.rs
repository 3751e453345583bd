//! Comparing phases: both sides rendered in memory, then compared file by
//! file and value by value, with the transition plan between them.

use crate::artifacts::Artifacts;
use crate::diff;
use crate::render::Renderer;
use crate::report::Comparison;
use crate::transition;
use crate::validate::{Checked, ValidPhase};

/// Spec keys that name a phase rather than configure it: comparing two
/// phases always changes them, so they are left out of the spec changes.
const NAMING_KEYS: [&str; 4] = ["name", "title", "order", "extends"];

fn spec_value(phase: &ValidPhase) -> serde_json::Value {
    let mut value = serde_json::to_value(&phase.spec).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in NAMING_KEYS {
            map.remove(key);
        }
    }
    value
}

pub struct Options<'a> {
    pub context: usize,
    pub only: &'a dyn Fn(&str) -> bool,
}

/// One phase against another; either side may be missing (a phase added or
/// removed between two directories).
pub fn compare(
    from: Option<&ValidPhase>,
    to: Option<&ValidPhase>,
    renderer: &Renderer,
    opts: &Options,
) -> anyhow::Result<Comparison> {
    let render = |p: Option<&ValidPhase>| -> anyhow::Result<Artifacts> {
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
    from: Option<(&ValidPhase, &Artifacts)>,
    to: Option<(&ValidPhase, &Artifacts)>,
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
        (Some(a), Some(b)) => Some(transition::plan(&a.spec, &b.spec)),
        _ => None,
    };
    Comparison::new(
        from.map(|p| p.spec.name.as_str().to_owned()),
        to.map(|p| p.spec.name.as_str().to_owned()),
        files,
        spec_changes,
        plan,
    )
}

/// The same phases in two directories (a pull request's phases/ against
/// main's), paired by name, in the newer side's order.
pub fn compare_dirs(
    old: &Checked,
    new: &Checked,
    renderer: &Renderer,
    opts: &Options,
) -> anyhow::Result<Vec<Comparison>> {
    let mut out = Vec::new();
    for phase in &new.phases {
        let before = old.phases.iter().find(|p| p.spec.name == phase.spec.name);
        out.push(compare(before, Some(phase), renderer, opts)?);
    }
    for phase in &old.phases {
        if !new.phases.iter().any(|p| p.spec.name == phase.spec.name) {
            out.push(compare(Some(phase), None, renderer, opts)?);
        }
    }
    Ok(out)
}

/// transitions/<from>-to-<to>.md for each pair of consecutive phases,
/// from the renderings `build` already made.
pub fn transition_notes(checked: &Checked, rendered: &[(&str, Artifacts)]) -> Artifacts {
    let mut files = Artifacts::default();
    let all = |_: &str| true;
    let opts = Options {
        context: 0,
        only: &all,
    };
    let files_of = |p: &ValidPhase| {
        rendered
            .iter()
            .find(|(n, _)| *n == p.spec.name.as_str())
            .map(|(_, a)| a)
    };
    for pair in checked.phases.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(fa), Some(fb)) = (files_of(a), files_of(b)) else {
            continue;
        };
        let c = compare_rendered(Some((a, fa)), Some((b, fb)), &opts);
        files.insert(
            format!("{}-to-{}.md", a.spec.name, b.spec.name),
            crate::report::transition_note(&c, (&a.file_names[0], &b.file_names[0])),
        );
    }
    files
}

//! The start every command shares, written once: load and plan the phases
//! directory, select the phases named, print the diagnostics in the chosen
//! format, and decide whether they stop the command.

use super::args::{EXIT_ERROR, Format};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::plan::{self, Planned, PlannedPhase};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// What a command asks of its phases directory.
pub(super) struct Request<'a> {
    pub dir: &'a Path,
    /// Phases to work on; all when empty.
    pub names: &'a [String],
    /// Warnings fail the command too.
    pub strict: bool,
    /// Only problems in the selected phases' files count: a command that
    /// works on one phase is not stopped by another's mistake.
    pub only_selected: bool,
    /// Codes that do not stop the command (`capacity` explains CAP001).
    pub waived: &'static [Code],
    pub plan: plan::Options,
}

impl<'a> Request<'a> {
    /// Every phase of `dir`, every diagnostic counting.
    pub fn all(dir: &'a Path) -> Request<'a> {
        Request {
            dir,
            names: &[],
            strict: false,
            only_selected: false,
            waived: &[],
            plan: plan::Options::default(),
        }
    }
}

impl<'a> Request<'a> {
    /// Every phase of `dir`, planned on a running deployment's own ports.
    pub fn on_deployment(dir: &'a Path, state: &crate::native::State) -> Request<'a> {
        Request {
            plan: state.plan_options(),
            ..Request::all(dir)
        }
    }
}

/// The state of the deployment `up --native` runs in `dir`; None, with
/// the error said, when there is none.
pub(super) fn deployment(dir: &Path) -> anyhow::Result<Option<crate::native::State>> {
    let state = crate::native::State::load(dir)?;
    if state.is_none() {
        eprintln!(
            "error: {} holds no deployment (no state.json)\n  help: bring a phase up first: scaleplan up PHASE --native --state {}",
            dir.display(),
            dir.display()
        );
    }
    Ok(state)
}

/// The deployment `up --native` runs in `state_dir`, with the phases
/// directory planned on its ports: the start of every command that works
/// on it (observe, loadtest, backup, restore). `phase` names the phase the
/// command is about; the one the deployment runs when None. Err carries
/// the exit code, the error said.
pub(super) fn on_deployment(
    format: Format,
    at: &super::args::Deployment,
    phase: Option<&str>,
) -> anyhow::Result<Result<(crate::native::State, Loaded, String), i32>> {
    let (phases, state_dir) = (at.phases.dir.as_path(), at.state.as_path());
    let Some(state) = deployment(state_dir)? else {
        return Ok(Err(EXIT_ERROR));
    };
    let loaded = match load(format, &Request::on_deployment(phases, &state))? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(Err(code)),
    };
    let name = phase.unwrap_or(&state.phase).to_owned();
    if loaded.planned.get(&name).is_none() {
        if phase.is_some() {
            eprintln!(
                "error: {} has no phase {name}\n  help: scaleplan list --phases {}",
                phases.display(),
                phases.display()
            );
        } else {
            eprintln!(
                "error: {} runs phase {name}, which {} does not have",
                state_dir.display(),
                phases.display()
            );
        }
        return Ok(Err(EXIT_ERROR));
    }
    Ok(Ok((state, loaded, name)))
}

/// The diagnostics of a run as JSON: every `--format json` document starts
/// with these fields.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub(super) struct DiagnosticsDoc {
    pub diagnostics: Vec<Diagnostic>,
    pub errors: usize,
    pub warnings: usize,
    pub ok: bool,
}

impl DiagnosticsDoc {
    fn new(diags: Diagnostics, strict: bool) -> DiagnosticsDoc {
        let failed = diags.has_errors() || (strict && diags.has_warnings());
        let diagnostics = diags.finish();
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        DiagnosticsDoc {
            warnings: diagnostics.len() - errors,
            errors,
            diagnostics,
            ok: !failed,
        }
    }
}

/// The phases a command goes on with.
pub(super) struct Loaded {
    pub planned: Planned,
    /// Indexes into `planned.phases`, in the order asked for.
    selected: Vec<usize>,
    /// What was reported, for JSON documents to include.
    pub report: DiagnosticsDoc,
}

impl Loaded {
    pub fn selected(&self) -> impl Iterator<Item = &PlannedPhase> {
        self.selected.iter().map(|&i| &self.planned.phases[i])
    }

    /// The one phase a single-phase command named.
    pub fn one(&self) -> &PlannedPhase {
        &self.planned.phases[self.selected[0]]
    }
}

/// Loads and plans a phases directory and reports its diagnostics: as text
/// on stderr, or, when they stop the command, as the JSON document on
/// stdout. Err carries the exit code of a command that must stop.
pub(super) fn load(format: Format, req: &Request) -> anyhow::Result<Result<Loaded, i32>> {
    let loaded = load_quiet(req)?;
    let report = match &loaded {
        Ok(l) => &l.report,
        Err(report) => report,
    };
    if format != Format::Json || loaded.is_err() {
        print(format, report, req.strict);
    }
    Ok(loaded.map_err(|_| EXIT_ERROR))
}

/// The same without printing: Err holds the diagnostics that stop it
/// (`serve` answers with them).
pub(super) fn load_quiet(req: &Request) -> anyhow::Result<Result<Loaded, DiagnosticsDoc>> {
    let planned = plan::plan_dir(req.dir, &req.plan)?;
    let (selected, unknown) = match planned.select(req.names, req.dir) {
        Ok(phases) => (
            phases
                .iter()
                .filter_map(|p| planned.phases.iter().position(|q| q.name() == p.name()))
                .collect(),
            None,
        ),
        Err(d) => (Vec::new(), Some(d)),
    };
    let mut diags = Diagnostics::default();
    for d in planned.diagnostics.clone().finish() {
        let ours = !req.only_selected
            || req.names.is_empty()
            || selected
                .iter()
                .any(|&i: &usize| planned.phases[i].phase.chain.contains(&d.location.file));
        if ours && !req.waived.contains(&d.code) {
            diags.push(d);
        }
    }
    diags.extend(unknown);
    let report = DiagnosticsDoc::new(diags, req.strict);
    if !report.ok {
        return Ok(Err(report));
    }
    Ok(Ok(Loaded {
        planned,
        selected,
        report,
    }))
}

/// Prints diagnostics: one JSON document on stdout, or text on stderr
/// with a count line.
pub(super) fn print(format: Format, report: &DiagnosticsDoc, strict: bool) {
    if format == Format::Json {
        crate::output::data(&json(report).unwrap_or_default());
        return;
    }
    let mut stderr = std::io::stderr().lock();
    for d in &report.diagnostics {
        let _ = writeln!(stderr, "{d}");
    }
    if !report.diagnostics.is_empty() {
        let _ = writeln!(
            stderr,
            "{} error(s), {} warning(s){}",
            report.errors,
            report.warnings,
            if strict && report.warnings > 0 {
                " (--strict: warnings fail)"
            } else {
                ""
            }
        );
    }
}

/// Prints a single diagnostic that stops a command.
pub(super) fn print_one(format: Format, d: Diagnostic) {
    let mut diags = Diagnostics::default();
    diags.push(d);
    print(format, &DiagnosticsDoc::new(diags, false), false);
}

/// Prints one JSON document.
pub(super) fn print_json<T: Serialize>(doc: &T) -> anyhow::Result<()> {
    crate::output::data(&json(doc)?);
    Ok(())
}

/// One JSON document as every command prints it (and `serve` answers it).
pub(super) fn json<T: Serialize>(doc: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(doc)?))
}

/// A deployment whose primary is a promoted standby (`writer`, a node
/// index) runs `phase` only if the phase has that node: planned without
/// it, the lost primary would be the writer again. False, with the error
/// said, when it does not.
pub(super) fn keeps_writer(phase: &PlannedPhase, writer: Option<u32>) -> bool {
    let Some(w) = writer.filter(|&w| w > 0) else {
        return true;
    };
    let replicas = phase.spec().postgres.read_replicas;
    if w <= replicas {
        return true;
    }
    let node = crate::plan::names::postgres_replica(w);
    eprintln!(
        "error: this deployment's primary is {node} (promoted), and phase {} has {replicas} read replica(s), not {node}: planned without it, the lost primary would be the writer again\n  help: run a phase that has {node}, or first promote a standby that phase has (scaleplan promote PHASE REPLICA)",
        phase.name()
    );
    false
}

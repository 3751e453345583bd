//! `scaleplan capacity`: the tables, or the smallest phase for N users.

use super::{EXIT_ERROR, EXIT_OK, Format, report};
use crate::diag::{Diagnostic, Diagnostics};
use crate::validate::{self, ValidPhase};
use std::path::Path;

pub(super) fn capacity(
    format: Format,
    phases: &Path,
    users: Option<u64>,
    headroom: f64,
    names: &[String],
) -> anyhow::Result<i32> {
    let checked = validate::check_dir(phases)?;
    let selected = match validate::select(&checked, names, phases) {
        Ok(s) => s,
        Err(d) => {
            report(format, checked.diagnostics.clone(), Some(d), false);
            return Ok(EXIT_ERROR);
        }
    };
    // CAP001 is what this command explains, so it does not stop it.
    let blocking: Vec<Diagnostic> = checked
        .diagnostics
        .clone()
        .finish()
        .into_iter()
        .filter(|d| d.code != crate::diag::Code::Cap001)
        .collect();
    let mut errors = Diagnostics::default();
    errors.extend(blocking);
    if errors.has_errors() {
        report(format, errors, None, false);
        return Ok(EXIT_ERROR);
    }
    let estimates: Vec<(&ValidPhase, crate::capacity::Estimate)> = selected
        .iter()
        .map(|p| (*p, crate::capacity::estimate(&p.spec)))
        .collect();
    let Some(wanted) = users else {
        match format {
            Format::Json => {
                let list: Vec<&crate::capacity::Estimate> =
                    estimates.iter().map(|(_, e)| e).collect();
                crate::say!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "phases": list }))?
                );
            }
            _ => {
                for (p, e) in &estimates {
                    let title = p
                        .spec
                        .title
                        .as_ref()
                        .map_or(p.spec.name.as_str(), |t| t.as_str());
                    crate::say!(
                        "{}",
                        crate::report::capacity_text(e, title, p.spec.users.min)
                    );
                }
            }
        }
        return Ok(EXIT_OK);
    };
    if !(headroom.is_finite() && headroom > 0.0) {
        eprintln!(
            "error: --headroom must be a positive number\n  help: 1.2 asks for 20% spare capacity"
        );
        return Ok(EXIT_ERROR);
    }
    let needed = (wanted as f64 * headroom).ceil() as u64;
    let pick = estimates.iter().find(|(_, e)| e.capacity >= needed);
    let largest = estimates.iter().max_by_key(|(_, e)| e.capacity);
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "users": wanted,
                "headroom": headroom,
                "needed": needed,
                "phase": pick.map(|(p, _)| p.spec.name.as_str()),
                "estimate": pick.map(|(_, e)| e),
                "largest": largest.map(|(_, e)| e),
                "remedy": if pick.is_none() { largest.map(|(_, e)| e.bottleneck.remedy()) } else { None },
            });
            crate::say!("{}", serde_json::to_string_pretty(&doc)?);
        }
        _ => match (pick, largest) {
            (Some((p, e)), _) => crate::say!(
                "{} carries {} users: it carries {} >= {} x {headroom} (bottleneck: {})",
                p.spec.name,
                crate::report::thousands(wanted),
                crate::report::thousands(e.capacity),
                crate::report::thousands(wanted),
                e.bottleneck.label()
            ),
            (None, Some((p, e))) => crate::say!(
                "no phase carries {} users with headroom {headroom} ({} needed): the largest, {}, carries {} (bottleneck: {}); {}",
                crate::report::thousands(wanted),
                crate::report::thousands(needed),
                p.spec.name,
                crate::report::thousands(e.capacity),
                e.bottleneck.label(),
                e.bottleneck.remedy()
            ),
            (None, None) => crate::say!("no phases"),
        },
    }
    Ok(if pick.is_some() { EXIT_OK } else { EXIT_ERROR })
}

//! Every generated file of the shipped phases, one snapshot per phase with a
//! header per file (review with `cargo insta review`).

use crate::support::repo;
use scaleplan::render::Renderer;
use scaleplan::validate;

#[test]
fn shipped_phases_render_as_snapshotted() {
    let checked = validate::check_dir(&repo().join("phases")).unwrap();
    assert!(
        !checked.diagnostics.has_errors(),
        "{:?}",
        checked.diagnostics
    );
    let renderer = Renderer::new(None).unwrap();
    assert_eq!(checked.names(), ["launch", "growth", "scale", "enterprise"]);
    for phase in &checked.phases {
        let files = renderer.render_phase(phase).unwrap();
        let mut joined = String::new();
        for (path, text) in files.iter() {
            joined.push_str(&format!("==== {path} ====\n{text}"));
        }
        insta::assert_snapshot!(format!("phase_{}", phase.spec.name), joined);
    }
}

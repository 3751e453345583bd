//! Mutated specs never panic the pipeline: a deterministic sweep of
//! byte-level edits of the shipped phases through load, validate and render.

use scaleplan::render::Renderer;
use testkit::{Sandbox, repo};

#[test]
fn mutated_specs_give_diagnostics_never_panics() {
    let originals: Vec<(String, Vec<u8>)> = [
        "base.yaml",
        "launch.yaml",
        "growth.yaml",
        "scale.yaml",
        "enterprise.toml",
    ]
    .iter()
    .map(|f| {
        (
            (*f).to_owned(),
            std::fs::read(repo().join("phases").join(f)).unwrap(),
        )
    })
    .collect();
    let sandbox = Sandbox::new("mutations");
    let dir = sandbox.path("phases");
    std::fs::create_dir_all(&dir).unwrap();
    let renderer = Renderer::new(None).unwrap();
    let pieces: [&[u8]; 12] = [
        b"\n",
        b":",
        b" ",
        b"-",
        b"{",
        b"}",
        b"[",
        b"\"",
        b"0",
        b"99999999999",
        b"null",
        b"\t",
    ];
    let mut seed: u64 = 0x5ca1e;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % n
    };
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..300 {
        for (name, bytes) in &originals {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let (name, bytes) = &originals[next(originals.len())];
        let mut mutated = bytes.clone();
        for _ in 0..1 + next(3) {
            if mutated.is_empty() {
                break;
            }
            let at = next(mutated.len());
            match next(3) {
                0 => {
                    mutated.remove(at);
                }
                1 => mutated
                    .splice(at..at, pieces[next(pieces.len())].iter().copied())
                    .for_each(drop),
                _ => mutated.truncate(at),
            }
        }
        std::fs::write(dir.join(name), &mutated).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let planned =
                scaleplan::plan::plan_dir(&dir, &scaleplan::plan::Options::default()).unwrap();
            if planned.diagnostics.has_errors() {
                return false;
            }
            for phase in &planned.phases {
                renderer.render_phase(phase).unwrap();
            }
            true
        }));
        match outcome {
            Ok(true) => valid += 1,
            Ok(false) => invalid += 1,
            Err(_) => panic!(
                "panicked on this {name}:\n{}",
                String::from_utf8_lossy(&mutated)
            ),
        }
    }
    assert!(
        invalid > 50 && valid > 10,
        "{valid} valid, {invalid} invalid: the sweep should hit both"
    );
}

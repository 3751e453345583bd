//! Runs the real binary in a throwaway directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary working directory, removed on drop.
pub struct Sandbox {
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new(label: &str) -> Sandbox {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "scaleplan-test-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Sandbox { root }
    }

    /// A sandbox whose phases/ holds copies of the given files.
    pub fn with_phases(label: &str, files: &[PathBuf]) -> Sandbox {
        let sandbox = Sandbox::new(label);
        let phases = sandbox.root.join("phases");
        std::fs::create_dir_all(&phases).unwrap();
        for file in files {
            std::fs::copy(file, phases.join(file.file_name().unwrap())).unwrap();
        }
        sandbox
    }

    /// A sandbox with the shipped phases.
    pub fn shipped(label: &str) -> Sandbox {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("phases"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        Sandbox::with_phases(label, &files)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Replaces text in a file of the sandbox. Each `from` must be there: a
    /// test whose edit silently missed would test the unedited file.
    pub fn edit(&self, rel: &str, edits: &[(&str, &str)]) -> String {
        let path = self.path(rel);
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for (from, to) in edits {
            assert!(text.contains(from), "{rel} does not contain {from:?}");
            text = text.replace(from, to);
        }
        std::fs::write(&path, &text).unwrap();
        text
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_in(&self.root, args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_in(&self.root, args, env)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs scaleplan with a deadline: a hang is a failure, not a stuck suite.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaleplan"));
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("scaleplan starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scaleplan {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir`, relative path -> bytes.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

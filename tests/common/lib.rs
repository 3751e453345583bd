//! What scaleplan's test binaries share: the built binary run with a
//! deadline in a throwaway directory, the repository's paths, and the
//! secrets end-to-end bring-ups use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The scaleplan binary cargo built for this test run: beside the test
/// binary's deps/ directory.
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = dir.join("scaleplan");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests through cargo test",
        bin.display()
    );
    bin
}

/// The secrets every end-to-end bring-up uses; a test greps out/ for them.
pub const SECRETS: [(&str, &str); 5] = [
    ("SCALEPLAN_POSTGRES_PASSWORD", "e2e-Superuser-7q2p"),
    ("SCALEPLAN_APP_DB_PASSWORD", "e2e-AppRole-9x4k"),
    ("SCALEPLAN_REPLICATION_PASSWORD", "e2e-Replicator-3m8v"),
    ("SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD", "e2e-PgbAdmin-5t1w"),
    ("SCALEPLAN_REDIS_PASSWORD", "e2e-Redis-8c6z"),
];

/// The value of one of `SECRETS`.
pub fn secret(var: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(k, _)| *k == var)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no test secret {var}"))
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
        std::fs::create_dir_all(&root).expect("creating a sandbox");
        Sandbox { root }
    }

    /// A sandbox whose phases/ holds copies of the given files.
    pub fn with_phases(label: &str, files: &[PathBuf]) -> Sandbox {
        let sandbox = Sandbox::new(label);
        let phases = sandbox.root.join("phases");
        std::fs::create_dir_all(&phases).expect("creating phases/");
        for file in files {
            let name = file.file_name().expect("a file name");
            std::fs::copy(file, phases.join(name))
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        sandbox
    }

    /// A sandbox with the shipped phases.
    pub fn shipped(label: &str) -> Sandbox {
        Sandbox::with_phases(label, &spec_files(&repo().join("phases")))
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
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{rel}: {e}"));
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

/// The spec files of a phases directory, sorted.
pub fn spec_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs scaleplan with a deadline: a hang is a failure, not a stuck suite.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_for(dir, args, env, Duration::from_secs(30))
}

/// The same with a deadline of the caller's choosing (bring-ups take
/// longer than checks).
pub fn run_for(dir: &Path, args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("scaleplan starts");
    let until = Instant::now() + deadline;
    // Drain the pipes on their own threads: a chatty command would
    // otherwise block on a full pipe and look hung.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for scaleplan") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("scaleplan {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Every file under `dir` (node_modules aside), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = entry.expect("a directory entry").path();
            if p.is_dir() {
                if !p.ends_with("node_modules") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir`, relative path -> bytes.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).expect("readable");
            (rel, bytes)
        })
        .collect()
}

/// YAML text as JSON, for checking generated YAML with a JSON Schema.
pub fn yaml_to_json(text: &str) -> serde_json::Value {
    use yaml_rust2::{Yaml, YamlLoader};
    fn convert(y: &Yaml) -> serde_json::Value {
        match y {
            Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => serde_json::Value::Null,
            Yaml::Boolean(b) => (*b).into(),
            Yaml::Integer(i) => (*i).into(),
            Yaml::Real(r) => r
                .parse::<f64>()
                .map_or(serde_json::Value::Null, serde_json::Value::from),
            Yaml::String(s) => s.clone().into(),
            Yaml::Array(a) => a.iter().map(convert).collect(),
            Yaml::Hash(h) => h
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, convert(v))
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}"));
    assert_eq!(docs.len(), 1, "one YAML document");
    convert(&docs[0])
}

/// A JSON POST over HTTP/1.0 to 127.0.0.1:`port`: the status and the body.
pub fn http_post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_owned(),
    ))
}

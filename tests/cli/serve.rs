//! `scaleplan serve` over real HTTP on a free loopback port: the CLI's
//! documents, the files, the diagrams, errors as problem+json, the limits,
//! the token, a page drawn in headless Chromium, a bounded load, and a
//! graceful stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{Sandbox, bin, repo, run_in};

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mermaid = repo().join("tests/diagrams/node_modules/mermaid/dist/mermaid.min.js");
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(dir.join("state"))
            .arg("--mermaid-js")
            .arg(&mermaid)
            .args(extra)
            .env_remove("SCALEPLAN_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("scaleplan serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit_once("http://")
            .and_then(|(_, a)| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, addr }
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(self.addr, method, path, headers, body)
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut rest = String::new();
                let _ = self
                    .child
                    .stdout
                    .as_mut()
                    .unwrap()
                    .read_to_string(&mut rest);
                return (status, rest);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn is_problem(&self, status: u16) -> bool {
        self.status == status
            && self.header("content-type") == Some("application/problem+json")
            && self.json()["status"] == status
    }
}

/// One HTTP/1.1 request, the path sent exactly as given (no client-side
/// normalisation of `..`).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A body over the limit may be refused before it is all sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The CLI's `--format json` document for the same question.
fn cli(dir: &Path, args: &[&str]) -> String {
    let run = run_in(dir, args, &[]);
    assert!(run.code == 0 || run.code == 1, "{args:?}: {}", run.stderr);
    run.stdout
}

#[test]
fn answers_with_the_cli_documents_the_files_and_the_diagrams() {
    let sandbox = Sandbox::shipped("serve-docs");
    let s = Server::start(&sandbox.root, &[], &[]);
    let root = &sandbox.root;
    for (path, args) in [
        ("/v1/phases", vec!["--format", "json", "list"]),
        (
            "/v1/phases/growth",
            vec!["inspect", "growth", "--output", "json"],
        ),
        (
            "/v1/phases/growth/validation",
            vec!["--format", "json", "validate", "growth"],
        ),
        (
            "/v1/phases/growth/capacity",
            vec!["--format", "json", "capacity", "growth"],
        ),
        (
            "/v1/diff?from=launch&to=growth",
            vec!["--format", "json", "diff", "launch", "growth"],
        ),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(r.body, cli(root, &args), "{path} differs from {args:?}");
    }
    // An unknown phase is 404 on every /v1/phases/{name} path.
    for path in [
        "/v1/phases/nope",
        "/v1/phases/nope/validation",
        "/v1/phases/nope/capacity",
        "/v1/phases/nope/files",
    ] {
        assert!(s.get(path).is_problem(404), "{path}");
    }
    // The OpenAPI document lists the values `format` takes, as the server
    // checks them.
    let doc = s.get("/openapi.json").json();
    for (path, method, values) in [
        ("/v1/diff", "get", serde_json::json!(["json", "markdown"])),
        (
            "/v1/validate",
            "post",
            serde_json::json!(["yaml", "yml", "toml"]),
        ),
    ] {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        let format = params.iter().find(|p| p["name"] == "format").unwrap();
        assert_eq!(format["schema"]["enum"], values, "{path}");
    }
    assert!(
        s.get("/v1/diff?from=launch&to=growth&format=yaml")
            .is_problem(400)
    );
    // The extractors' own rejections are problems too.
    for (path, status) in [
        ("/v1/phases/%zz", 404),
        ("/v1/phases/%C3%28/capacity", 400),
        ("/v1/diff?from=launch&from=growth&to=scale", 400),
    ] {
        let r = s.get(path);
        assert!(r.is_problem(status), "{path}: {r:?}");
    }
    // A long target and many headers: scaleplan's own bounds, as problems.
    let long = format!("/v1/phases/{}", "a".repeat(20_000));
    assert!(s.get(&long).is_problem(414));
    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("X-Many-{i}"), "1".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(s.request("GET", "/v1/phases", &many, b"").is_problem(431));
    // Past the HTTP layer's own bounds too (it answers a 64 KB target, or
    // more headers than it parses, without a body): the same problems.
    let longer = format!("/v1/phases/{}", "a".repeat(70_000));
    let r = s.get(&longer);
    assert!(r.is_problem(414), "{r:?}");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("over 8192 bytes")
    );
    let lots: Vec<(String, String)> = (0..1_200)
        .map(|i| (format!("X-Lots-{i}"), "1".to_owned()))
        .collect();
    let lots: Vec<(&str, &str)> = lots.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(s.request("GET", "/v1/phases", &lots, b"").is_problem(431));
    let big = "b".repeat(300_000);
    let r = s.request("GET", "/v1/phases", &[("X-Big", &big)], b"");
    assert!(r.is_problem(431), "{r:?}");
    // A request within the bounds after all this is served as before.
    assert_eq!(s.get("/v1/phases").status, 200);
    // Markdown by ?format= and by content negotiation.
    let md = cli(root, &["--format", "markdown", "diff", "launch", "growth"]);
    assert_eq!(
        s.get("/v1/diff?from=launch&to=growth&format=markdown").body,
        md
    );
    let negotiated = s.request(
        "GET",
        "/v1/diff?from=launch&to=growth",
        &[("Accept", "text/markdown")],
        b"",
    );
    assert_eq!(negotiated.body, md);
    assert!(
        negotiated
            .header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    // The transition plan is diff's `plan`.
    let diff: serde_json::Value = serde_json::from_str(&cli(
        root,
        &["--format", "json", "diff", "launch", "growth"],
    ))
    .unwrap();
    assert_eq!(
        s.get("/v1/transitions/launch/growth").json(),
        diff["comparisons"][0]["plan"]
    );
    // The rendered tree, file by file, as `build` writes it.
    let build = run_in(root, &["build"], &[]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    let files = s.get("/v1/phases/growth/files").json();
    let listed: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed.len(),
        testkit::files_under(&root.join("out/growth")).len()
    );
    for path in [
        "compose/docker-compose.yml",
        "README.md",
        "architecture.mmd",
    ] {
        assert!(listed.contains(&path), "{path}");
        let r = s.get(&format!("/v1/phases/growth/files/{path}"));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            std::fs::read_to_string(root.join("out/growth").join(path)).unwrap()
        );
    }
    let diagram = s.get("/v1/phases/growth/diagram");
    assert!(
        diagram
            .header("content-type")
            .unwrap()
            .starts_with("text/vnd.mermaid")
    );
    let mmd = std::fs::read_to_string(root.join("out/growth/architecture.mmd")).unwrap();
    assert!(mmd.ends_with(&diagram.body), "{}", diagram.body);
    assert_eq!(s.get("/healthz").json()["ok"], true);
    // The committed OpenAPI document is the one served.
    let openapi = s.get("/openapi.json");
    assert_eq!(
        openapi.body,
        std::fs::read_to_string(repo().join("schemas/openapi.json")).unwrap(),
        "schemas/openapi.json is stale: scaleplan schema --openapi > schemas/openapi.json"
    );
    let (status, rest) = s.stop();
    assert!(status.success(), "{status:?}");
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn paths_never_leave_the_rendered_tree() {
    let sandbox = Sandbox::shipped("serve-paths");
    let s = Server::start(&sandbox.root, &[], &[]);
    for path in [
        "/v1/phases/launch/files/../../etc/passwd",
        "/v1/phases/launch/files/..%2f..%2f..%2fetc%2fpasswd",
        "/v1/phases/launch/files/%2e%2e/%2e%2e/etc/passwd",
        "/v1/phases/launch/files/compose/../../../etc/passwd",
        "/v1/phases/launch/files//etc/passwd",
        "/v1/phases/launch/files/%2fetc%2fpasswd",
        "/v1/phases/launch/files/compose%5c..%5c..%5cetc%5cpasswd",
        "/v1/phases/..%2f..%2fetc/files/passwd",
        "/v1/phases/launch/files/%ff%fe",
    ] {
        let r = s.get(path);
        assert!(
            r.status == 400 || r.status == 404,
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(!r.body.contains("root:"), "{path}: {}", r.body);
        assert!(r.is_problem(r.status), "{path}: {r:?}");
    }
    assert!(s.get("/v1/phases/nope/capacity").is_problem(404));
    assert!(s.get("/v1/nothing").is_problem(404));
    assert!(s.get("/v1/diff?from=launch").is_problem(400));
}

#[test]
fn posted_specs_answer_with_located_diagnostics_and_nothing_crashes_the_server() {
    let sandbox = Sandbox::shipped("serve-validate");
    let s = Server::start(&sandbox.root, &[], &[]);
    let bad = "extends: growth\nname: bigger\norder: 9\nusers: {min: 100, max: 200}\napp:\n  replicas: -3\n";
    let r = s.request(
        "POST",
        "/v1/validate",
        &[("Content-Type", "application/yaml")],
        bad.as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let d = &r.json()["diagnostics"][0];
    assert_eq!(d["location"]["file"], "phases/request.yaml", "{d}");
    assert_eq!(
        (
            d["location"]["line"].as_u64(),
            d["location"]["column"].as_u64()
        ),
        (Some(6), Some(13))
    );
    assert!(d["code"].as_str().unwrap().starts_with("SCH"), "{d}");
    // The same file through `validate` says the same.
    std::fs::write(sandbox.path("phases/request.yaml"), bad).unwrap();
    let cli_doc: serde_json::Value =
        serde_json::from_str(&cli(&sandbox.root, &["--format", "json", "validate"])).unwrap();
    std::fs::remove_file(sandbox.path("phases/request.yaml")).unwrap();
    assert_eq!(r.json(), cli_doc);
    // A good one in TOML, and one replacing growth's file.
    let good = "extends = \"enterprise\"\nname = \"bigger\"\norder = 9\n\n[users]\nmin = 40000\nmax = 50000\n";
    let r = s.request("POST", "/v1/validate?format=toml", &[], good.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    let growth = std::fs::read_to_string(sandbox.path("phases/growth.yaml")).unwrap();
    let r = s.request(
        "POST",
        "/v1/validate?phase=growth",
        &[],
        growth
            .replace("name: growth", "name: growth\nbogus_key: 1")
            .as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["diagnostics"][0]["location"]["file"],
        "phases/growth.yaml"
    );
    assert!(
        s.request("POST", "/v1/validate?phase=nope", &[], b"name: x\n")
            .is_problem(404)
    );
    // A NUL byte does not cut the spec short: the lines after it would
    // have been dropped without a word.
    let launch = std::fs::read_to_string(sandbox.path("phases/launch.yaml")).unwrap();
    let cut = format!("{launch}\0\napp: {{replicas: -3}}\n");
    let r = s.request("POST", "/v1/validate?phase=launch", &[], cut.as_bytes());
    assert_eq!(r.status, 422, "{}", r.body);
    let doc = r.json();
    let d = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "LOAD010")
        .unwrap_or_else(|| panic!("no LOAD010: {doc}"));
    assert_eq!(d["location"]["file"], "phases/launch.yaml", "{d}");
    assert_eq!(
        d["location"]["line"].as_u64(),
        Some(launch.lines().count() as u64 + 1),
        "{d}"
    );
    // Over the limit: 413, as problem+json.
    let big = vec![b'a'; 300 * 1024];
    assert!(s.request("POST", "/v1/validate", &[], &big).is_problem(413));
    // What would crash a careless loader gets an answer.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nasty: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x01],
        b"\0\0\0".to_vec(),
        deep.into_bytes(),
        b"a: &x [*x]\nb: *x\n".to_vec(),
        b"name: [\n".to_vec(),
        b"".to_vec(),
    ];
    for body in &nasty {
        let r = s.request("POST", "/v1/validate", &[], body);
        assert!((400..500).contains(&r.status), "{}: {}", r.status, r.body);
    }
    // Anchors of long strings repeated by aliases of aliases (200 KB that
    // expand to 200 MB): refused by their expanded text, within a memory
    // bound (the server's peak resident set, before and after).
    let peak = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let long = "x".repeat(200_000);
    let bomb = format!(
        "a: &a \"{long}\"\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    );
    let before = peak();
    let r = s.request("POST", "/v1/validate", &[], bomb.as_bytes());
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("LOAD007"), "{}", r.body);
    let grown = peak().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "one alias request took {grown} kB more at its peak"
    );
    assert_eq!(s.get("/healthz").status, 200);
    // Specs are read per request: break one on disk and the answers say so.
    let path = sandbox.path("phases/launch.yaml");
    let launch = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{launch}\nunknown_field: 1\n")).unwrap();
    let r = s.get("/v1/phases");
    assert!(r.is_problem(422), "{r:?}");
    assert_eq!(r.json()["diagnostics"]["ok"], false);
    std::fs::write(&path, launch).unwrap();
    assert_eq!(s.get("/v1/phases").status, 200);
    // Renderings are reused while the specs are unchanged, and follow an
    // edit at the next request.
    let file = "/v1/phases/launch/files/local/pgbouncer/pgbouncer-1/pgbouncer.ini";
    let first = s.get(file);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(s.get(file).body, first.body);
    let launch = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{launch}\npgbouncer: {{ default_pool_size: 17 }}\n"),
    )
    .unwrap();
    let edited = s.get(file);
    assert!(
        edited.body.contains("default_pool_size = 17"),
        "{}",
        edited.body
    );
    std::fs::write(&path, &launch).unwrap();
    assert_eq!(s.get(file).body, first.body);
}

/// A raw HTTP/1.1 request: the request line and headers exactly as given.
fn raw(addr: SocketAddr, head: &str) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[test]
fn without_a_token_only_requests_addressed_to_loopback_are_answered() {
    let sandbox = Sandbox::shipped("serve-hosts");
    let s = Server::start(&sandbox.root, &[], &[]);
    let addr = s.addr;
    let ok = format!("GET /v1/phases HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(addr, &ok), 200);
    for (what, head) in [
        (
            "a second Host",
            format!("GET /v1/phases HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        ),
        (
            "a foreign authority in the target",
            format!("GET http://evil.example/v1/phases HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        ),
        (
            "userinfo-like text after the port",
            "GET /v1/phases HTTP/1.1\r\nHost: localhost:80@evil.example\r\nConnection: close\r\n\r\n".to_owned(),
        ),
        (
            "a rebound name",
            "GET /v1/phases HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_owned(),
        ),
    ] {
        assert_eq!(raw(addr, &head), 403, "{what}");
    }
}

/// Headers that never end hold no connection past --request-timeout.
#[test]
fn headers_that_never_end_are_cut_off() {
    let sandbox = Sandbox::shipped("serve-slow-headers");
    let s = Server::start(&sandbox.root, &["--request-timeout", "2"], &[]);
    let mut c = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    c.write_all(format!("GET /v1/phases HTTP/1.1\r\nHost: {}\r\n", s.addr).as_bytes())
        .unwrap();
    // One more header a second, never the blank line that ends them.
    let mut closed = false;
    for i in 0..20 {
        std::thread::sleep(Duration::from_secs(1));
        if c.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let read = c.read(&mut buf);
        c.set_nonblocking(false).unwrap();
        if read.is_ok() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the connection was still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The server goes on answering.
    assert_eq!(s.get("/healthz").status, 200);
}

/// More validations at once than the server has workers, with a short
/// --request-timeout: each request arrived whole, so none is answered 408;
/// one that waits too long for a worker is told the server is busy (503,
/// Retry-After, problem+json).
#[test]
fn a_busy_server_answers_503_not_408() {
    let sandbox = Sandbox::shipped("serve-busy");
    let s = Server::start(&sandbox.root, &["--request-timeout", "3"], &[]);
    let addr = s.addr;
    let growth = std::fs::read_to_string(sandbox.path("phases/growth.yaml")).unwrap();
    // A comment pads the body to 240 KB, under the 256 KB limit.
    let body = format!("{growth}#{}\n", "x".repeat(240 * 1024 - growth.len()));
    let body = std::sync::Arc::new(body);
    let handles: Vec<_> = (0..240)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                let r = request(
                    addr,
                    "POST",
                    "/v1/validate?phase=growth",
                    &[],
                    body.as_bytes(),
                );
                (
                    r.status,
                    r.header("retry-after").map(str::to_owned),
                    r.is_problem(503),
                )
            })
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (mut ok, mut busy) = (0, 0);
    for (status, retry, problem) in &answers {
        match status {
            200 => ok += 1,
            503 => {
                assert!(
                    *problem && retry.as_deref() == Some("1"),
                    "{status} {retry:?}"
                );
                busy += 1;
            }
            other => panic!("a whole request was answered {other}"),
        }
    }
    eprintln!("240 validations at once: {ok} answered, {busy} told 503 (busy)");
    assert!(ok > 0);
}

#[test]
fn a_token_guards_everything_but_health_and_other_addresses_need_one() {
    // Beyond loopback, no token: refused before it binds.
    let sandbox = Sandbox::shipped("serve-token");
    let run = run_in(
        &sandbox.root,
        &["serve", "--listen", "0.0.0.0:0"],
        &[("SCALEPLAN_SERVE_TOKEN", "")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("SCALEPLAN_SERVE_TOKEN"),
        "{}",
        run.stderr
    );
    let token = "0123456789abcdef0123456789abcdef";
    let s = Server::start(&sandbox.root, &[], &[("SCALEPLAN_SERVE_TOKEN", token)]);
    assert_eq!(s.get("/healthz").status, 200);
    let none = s.get("/v1/phases");
    assert!(none.is_problem(401), "{none:?}");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    for wrong in [
        "Bearer nope",
        "Bearer 0123456789abcdef0123456789abcdeX",
        token,
    ] {
        assert_eq!(
            s.request("GET", "/v1/phases", &[("Authorization", wrong)], b"")
                .status,
            401,
            "{wrong}"
        );
    }
    let auth = format!("Bearer {token}");
    assert_eq!(
        s.request("GET", "/v1/phases", &[("Authorization", &auth)], b"")
            .status,
        200
    );
}

/// Headless Chromium (Debian's `chromium`) loads the page and Mermaid
/// draws every phase's diagram as an SVG.
#[test]
fn the_page_draws_every_diagram_in_a_real_browser() {
    let sandbox = Sandbox::shipped("serve-page");
    let s = Server::start(&sandbox.root, &[], &[]);
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-resource=\"websocket\""),
        "{}",
        page.body
    );
    let profile = sandbox.path("chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{}/", s.addr))
        .output()
        .expect("chromium runs: scripts/test installs Debian's chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        !dom.contains("data-error"),
        "Mermaid failed in the page:\n{dom}"
    );
    assert!(
        dom.contains("data-rendered=\"4\""),
        "not every diagram was drawn:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in ["launch", "growth", "scale", "enterprise"] {
        let at = dom.find(&format!("id=\"diagram-{phase}\"")).unwrap();
        let rest = &dom[at..];
        let end = rest.find("</pre>").unwrap();
        assert!(rest[..end].contains("<svg"), "{phase}: no SVG drawn");
        assert!(
            rest[..end].contains("aria-roledescription=\"flowchart-v2\""),
            "{phase}"
        );
    }
}

/// 2,000 requests from 50 concurrent clients, all to loopback: no errors;
/// the latencies are printed for the record, not asserted.
#[test]
fn a_bounded_load_answers_every_request() {
    let sandbox = Sandbox::shipped("serve-load");
    let s = Server::start(&sandbox.root, &[], &[]);
    let addr = s.addr;
    let paths = [
        "/healthz",
        "/v1/phases",
        "/v1/phases/growth/capacity",
        "/v1/phases/scale/diagram",
    ];
    let started = Instant::now();
    let handles: Vec<_> = (0..50)
        .map(|client| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..40 {
                    let path = paths[(client + i) % paths.len()];
                    let t = Instant::now();
                    let r = request(addr, "GET", path, &[], b"");
                    out.push((r.status, t.elapsed()));
                }
                out
            })
        })
        .collect();
    let mut all: Vec<(u16, Duration)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let wall = started.elapsed();
    assert_eq!(all.len(), 2000);
    let errors = all.iter().filter(|(s, _)| *s != 200).count();
    assert_eq!(errors, 0, "{errors} of 2000 requests failed");
    all.sort_by_key(|(_, d)| *d);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "serve: 2000 requests, 50 clients: median {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} requests/s",
        ms(all[999].1),
        ms(all[1979].1),
        ms(all[1999].1),
        2000.0 / wall.as_secs_f64()
    );
}

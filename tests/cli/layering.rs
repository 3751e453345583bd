//! The pipeline's shape, checked on the source: every module of src/
//! belongs to a stage, imports only from its own stage or earlier ones, and
//! no two files import each other, however indirectly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use testkit::repo;

/// Top-level modules in pipeline order; `diag` and `output` serve all.
const STAGES: &[(&str, usize)] = &[
    ("diag", 0),
    ("keyword", 0),
    ("output", 0),
    ("spec", 1),
    ("validate", 2),
    ("plan", 3),
    ("render", 4),
    ("transition", 5),
    ("compare", 6),
    ("native", 7),
    ("cli", 8),
];

/// A module path such as ["plan", "topology"] (empty for the crate root).
type Module = Vec<String>;

struct Source {
    module: Module,
    /// A mod.rs or lib.rs: `super` is its parent and plain names may be
    /// its children.
    is_dir_module: bool,
    text: String,
}

fn sources() -> BTreeMap<Module, Source> {
    let src = repo().join("src");
    let mut out = BTreeMap::new();
    for path in testkit::files_under(&src) {
        let rel = path.strip_prefix(&src).unwrap();
        if rel == Path::new("main.rs") || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let mut module: Module = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let is_dir_module = matches!(module.last().map(String::as_str), Some("mod") | Some("lib"));
        if is_dir_module {
            module.pop();
        }
        let text = strip(&std::fs::read_to_string(&path).unwrap());
        out.insert(
            module.clone(),
            Source {
                module,
                is_dir_module,
                text,
            },
        );
    }
    out
}

/// The text without comments and string literals, which may mention paths
/// without importing them.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            // A char literal such as '"' must not open a string.
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                } else if rest.starts_with('\\') {
                    for c in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                    }
                }
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

/// Every path the text names, as segments, with where it starts:
/// `crate::a::b`, `super::a`, and each item of a `use x::{a::b, c}` list.
fn paths(text: &str) -> Vec<Vec<String>> {
    located_paths(text).into_iter().map(|(_, p)| p).collect()
}

fn located_paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts =
            i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':' || bytes[i - 1] == b'$');
        if starts && ident(bytes[i]) {
            let (segs, end) = read_path(text, i);
            if segs.len() > 1 || text[end..].starts_with("::{") {
                if text[end..].starts_with("::{") {
                    let close = text[end..].find('}').map_or(text.len(), |c| end + c);
                    for item in text[end + 3..close].split(',') {
                        let item = item.trim();
                        let mut full = segs.clone();
                        full.extend(
                            item.split("::")
                                .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
                                .filter(|s| !s.is_empty() && s != "self"),
                        );
                        out.push((i, full));
                    }
                    i = close;
                } else {
                    out.push((i, segs));
                    i = end;
                }
                continue;
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

fn read_path(text: &str, start: usize) -> (Vec<String>, usize) {
    let bytes = text.as_bytes();
    let mut segs = Vec::new();
    let mut i = start;
    loop {
        let s = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        segs.push(text[s..i].to_owned());
        if text[i..].starts_with("::")
            && bytes
                .get(i + 2)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            i += 2;
        } else {
            return (segs, i);
        }
    }
}

/// The byte ranges of inline modules (`mod tests { ... }`): a `super`
/// inside one names the file's own module.
fn inline_modules(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("mod ") {
        let start = from + at;
        from = start + 4;
        let rest = &text[from..];
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if name_end == 0 || !rest[name_end..].trim_start().starts_with('{') {
            continue;
        }
        let open = from + name_end + rest[name_end..].find('{').unwrap_or(0);
        let mut depth = 0;
        for (i, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push((open, open + i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The deepest module of `files` that a path names, from `from`; `inline`
/// counts the inline modules the path sits in.
fn resolve(
    path: &[String],
    inline: usize,
    from: &Source,
    files: &BTreeMap<Module, Source>,
    children: &BTreeSet<String>,
) -> Option<Module> {
    let (mut base, rest): (Module, &[String]) = match path[0].as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "super" => {
            let mut m = from.module.clone();
            let mut rest = path;
            // The first supers climb out of inline modules only.
            for _ in 0..inline {
                if rest.first().is_some_and(|s| s == "super") {
                    rest = &rest[1..];
                }
            }
            if rest.first().is_some_and(|s| s == "super") {
                m.pop();
                rest = &rest[1..];
            }
            while rest.first().is_some_and(|s| s == "super") {
                m.pop();
                rest = &rest[1..];
            }
            (m, rest)
        }
        name if from.is_dir_module && children.contains(name) => (from.module.clone(), path),
        _ => return None,
    };
    let mut found = files.contains_key(&base).then(|| base.clone());
    for seg in rest {
        base.push(seg.clone());
        if files.contains_key(&base) {
            found = Some(base.clone());
        } else {
            break;
        }
    }
    found
}

fn stage(module: &Module) -> Option<usize> {
    let top = module.first()?;
    STAGES.iter().find(|(n, _)| n == top).map(|(_, s)| *s)
}

fn edges() -> BTreeMap<Module, BTreeSet<Module>> {
    let files = sources();
    let mut graph = BTreeMap::new();
    for source in files.values() {
        let children: BTreeSet<String> = if source.is_dir_module {
            files
                .keys()
                .filter(|m| m.len() == source.module.len() + 1 && m.starts_with(&source.module))
                .map(|m| m[m.len() - 1].clone())
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut deps = BTreeSet::new();
        let inline = inline_modules(&source.text);
        for (at, path) in located_paths(&source.text) {
            let depth = inline.iter().filter(|(s, e)| *s < at && at < *e).count();
            if let Some(target) = resolve(&path, depth, source, &files, &children) {
                if target != source.module && !target.is_empty() {
                    deps.insert(target);
                }
            }
        }
        graph.insert(source.module.clone(), deps);
    }
    graph
}

fn show(m: &Module) -> String {
    format!("src/{}", m.join("/"))
}

#[test]
fn every_module_imports_only_from_its_stage_or_earlier() {
    let graph = edges();
    let mut problems = Vec::new();
    for (from, deps) in &graph {
        if from.is_empty() {
            continue;
        }
        let Some(s) = stage(from) else {
            problems.push(format!("{} belongs to no stage", show(from)));
            continue;
        };
        for to in deps {
            match stage(to) {
                Some(t) if t <= s || t == 0 => {}
                Some(_) => problems.push(format!(
                    "{} (stage {s}) imports {} from a later stage",
                    show(from),
                    show(to)
                )),
                None => problems.push(format!("{} belongs to no stage", show(to))),
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The check sees real imports: the CLI reaches back to the plan.
    assert!(
        graph[&vec!["cli".to_owned(), "up".to_owned()]]
            .contains(&vec!["plan".to_owned(), "target".to_owned()]),
        "{:#?}",
        graph
    );
}

#[test]
fn no_two_files_import_each_other() {
    let graph = edges();
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.clone());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.clone());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.clone());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            let shown: Vec<String> = cycle.iter().map(show).collect();
            panic!("import cycle: {}", shown.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_later_stage_and_a_cycle() {
    let a = Source {
        module: vec!["spec".into(), "x".into()],
        is_dir_module: false,
        text: strip(
            "use crate::plan::topology::Topology; // crate::cli::x\nlet s = \"crate::cli\";",
        ),
    };
    let found = paths(&a.text);
    assert_eq!(
        found,
        vec![
            vec!["crate", "plan", "topology", "Topology"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        ]
    );
    let list = paths("use super::{a::b, c as d, self};");
    assert_eq!(
        list,
        vec![
            vec!["super".to_owned(), "a".to_owned(), "b".to_owned()],
            vec!["super".to_owned(), "c".to_owned()],
            vec!["super".to_owned()],
        ]
    );
}

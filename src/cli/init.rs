//! `scaleplan init`: a small, commented starting set for a new project
//! (an abstract base, a launch phase, a growth phase) and the JSON Schema
//! their editor association points at. It validates and builds as
//! written, and never overwrites a file.

use super::args::{EXIT_ERROR, EXIT_OK};
use crate::spec::types::is_label;
use crate::validate::schema::schema_text;
use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The project's name: a DNS label (it prefixes every resource).
    #[arg(long, default_value = "myapp")]
    project: String,
    /// The project's root: phases/ and schemas/ are written under it.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

/// The starting files, relative to the project's root. The specs name the
/// schema by a relative path, as the shipped phases do.
const FILES: [(&str, &str); 3] = [
    (
        "phases/base.yaml",
        include_str!("../../templates/init/base.yaml"),
    ),
    (
        "phases/launch.yaml",
        include_str!("../../templates/init/launch.yaml"),
    ),
    (
        "phases/growth.yaml",
        include_str!("../../templates/init/growth.yaml"),
    ),
];
const SCHEMA: &str = "schemas/phase.schema.json";

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    let project = args.project.as_str();
    if !is_label(project) {
        eprintln!(
            "error[INIT001]: --project {project:?} is not a DNS label\n  help: lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit (it becomes host, service and resource names)"
        );
        return Ok(EXIT_ERROR);
    }
    let mut files: Vec<(PathBuf, String)> = FILES
        .iter()
        .map(|(rel, text)| (args.dir.join(rel), fill(text, project)))
        .collect();
    files.push((args.dir.join(SCHEMA), schema_text()));
    // Nothing is written unless nothing is in the way: a second init, or
    // one in an existing project, changes no file.
    let existing: Vec<&Path> = files
        .iter()
        .map(|(p, _)| p.as_path())
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        for p in &existing {
            eprintln!(
                "error[INIT002]: {}: exists; init never overwrites a file",
                p.display()
            );
        }
        eprintln!("  help: run init in an empty directory, or pass --dir DIR");
        return Ok(EXIT_ERROR);
    }
    // Each file is created, never replaced (create_new), and a failure
    // part-way removes what this run wrote: all or nothing.
    let mut written: Vec<&Path> = Vec::new();
    for (path, text) in &files {
        if let Err(e) = create(path, text) {
            for done in written {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    for path in written {
        crate::say!("wrote {}", path.display());
    }
    crate::say!(
        "next: scaleplan validate --phases {0} && scaleplan build --phases {0}",
        args.dir.join("phases").display()
    );
    Ok(EXIT_OK)
}

fn create(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Words pg_hba.conf reads as keywords in its database column.
const HBA_KEYWORDS: [&str; 5] = ["all", "sameuser", "samerole", "samegroup", "replication"];

/// The starting file for `project`: its database takes the project's name
/// as a PostgreSQL identifier (a DNS label may hold '-' or start with a
/// digit, an identifier may not; at most 63 characters), and never a word
/// pg_hba.conf reads as a keyword.
fn fill(text: &str, project: &str) -> String {
    let mut database = project.replace('-', "_");
    if database.starts_with(|c: char| c.is_ascii_digit()) {
        database.insert_str(0, "db_");
    }
    if HBA_KEYWORDS.contains(&database.as_str()) {
        database.push_str("_db");
    }
    database.truncate(63);
    text.replace("{project}", project)
        .replace("{database}", &database)
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_and_keyword_names_give_valid_databases() {
        let long = format!("9{}", "a".repeat(62));
        let base = super::fill(super::FILES[0].1, &long);
        let db = base
            .lines()
            .find_map(|l| l.trim().strip_prefix("database: "))
            .unwrap();
        assert_eq!(db.len(), 63, "{db}");
        let base = super::fill(super::FILES[0].1, "all");
        assert!(base.contains("database: all_db\n"), "{base}");
    }

    #[test]
    fn the_database_is_an_identifier() {
        let base = super::fill(super::FILES[0].1, "9-lives");
        assert!(base.contains("project: 9-lives\n"), "{base}");
        assert!(base.contains("database: db_9_lives\n"), "{base}");
        for placeholder in ["{project}", "{database}"] {
            assert!(!base.contains(placeholder), "{placeholder} is left: {base}");
        }
    }
}

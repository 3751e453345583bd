//! Typed diagnostics: every problem scaleplan reports has a stable code, a
//! severity, a location in the user's file and a help line.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A position in a spec file. Lines and columns count from 1, columns in
/// characters, as editors show them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
pub struct Location {
    #[serde(serialize_with = "serialize_path")]
    #[schemars(with = "String")]
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

fn serialize_path<S: serde::Serializer>(path: &Arc<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl Location {
    pub fn start_of(file: &Arc<PathBuf>) -> Self {
        Location {
            file: Arc::clone(file),
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(schemars::JsonSchema)]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes. The string form is part of the CLI contract:
/// users grep for it and CI scripts match on it, so a code is never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// File cannot be read.
    Load001,
    /// Not valid UTF-8.
    Load002,
    /// YAML syntax error.
    Load003,
    /// TOML syntax error.
    Load004,
    /// Empty document, or the top level is not a mapping.
    Load005,
    /// Duplicate mapping key.
    Load006,
    /// Nesting or alias expansion beyond the limits.
    Load007,
    /// A YAML or TOML feature a spec cannot use (tags, complex keys, dates...).
    Load008,
    /// No spec files found, or an unknown phase was asked for.
    Load009,
    /// A control character no YAML or TOML document may hold (a NUL
    /// would make the parser stop there without a word).
    Load010,
    /// `extends` names a spec that does not exist.
    Ext001,
    /// `extends` forms a cycle.
    Ext002,
    /// `extends` is not a plain name.
    Ext003,
    /// Unknown key.
    Sch001,
    /// Wrong type.
    Sch002,
    /// Not one of the allowed values.
    Sch003,
    /// Number out of range.
    Sch004,
    /// Value does not match the required format.
    Sch005,
    /// Required key missing.
    Sch006,
    /// Any other schema violation.
    Sch007,
    /// Name that is not a DNS label.
    Name001,
    /// A string that could add a line or directive to a generated config.
    Safe001,
    /// users.min above users.max.
    Phase001,
    /// Two phases with one name.
    Phase002,
    /// Two phases with one order.
    Phase003,
    /// max_client_conn below the pool size.
    Pgb001,
    /// Pools need more server connections than the primary allows.
    Pgb002,
    /// Read pools need more connections than a replica allows.
    Pgb003,
    /// A setting the chosen PgBouncer version does not know.
    Pgb004,
    /// No pinned image for the PgBouncer version.
    Pgb005,
    /// A PgBouncer too old to verify each host of a list on its own.
    Pgb006,
    /// Unknown postgres.parameters key.
    Pg001,
    /// A parameter that a spec field controls.
    Pg002,
    /// A backup window shorter than RDS allows.
    Pg003,
    /// Sentinel mode without replicas.
    Red001,
    /// Fewer than three sentinels.
    Red002,
    /// Quorum outside 1..=sentinels.
    Red003,
    /// Quorum below a majority of sentinels.
    Red004,
    /// Even number of sentinels.
    Red005,
    /// Cluster with fewer than three shards.
    Red006,
    /// Cluster shards without replicas.
    Red007,
    /// maxmemory above (or too close to) the node's memory.
    Red008,
    /// A block that belongs to another Redis mode, or a missing one.
    Red009,
    /// min_replicas_to_write above the replicas there are.
    Red010,
    /// A Redis mode that needs a newer Redis.
    Red011,
    /// Workers (BullMQ queues) on a Redis whose policy can evict keys.
    Red012,
    /// Queues on a cloud Redis without a replica.
    Red013,
    /// A queue Redis in a phase that runs no queues.
    Red014,
    /// `notifications` on a service that is not a worker.
    Ntf001,
    /// A worker with notifications that does not use Redis (its queues).
    Ntf002,
    /// Regions: not exactly one primary.
    Reg001,
    /// Regions or services: duplicate names.
    Reg002,
    /// A Redis global datastore without a secondary region to replicate to.
    Reg003,
    /// A secondary region's own Redis beside a global datastore.
    Reg004,
    /// A burstable node type for a global datastore, which takes none.
    Reg005,
    /// Terraform's state kept in a local file.
    Tf001,
    /// Estimated capacity below users.max.
    Cap001,
    /// The app's database pools open more PgBouncer clients than it takes.
    Cap002,
    /// Two listeners on one address and port.
    Port002,
    /// A version the chosen Compose image source does not ship.
    Cmp001,
    /// Redis moves backwards between consecutive phases.
    Trn001,
    /// Capacity shrinks between consecutive phases.
    Trn002,
    /// An identity of the deployment changes between consecutive phases.
    Trn003,
    /// A move into cluster mode that ElastiCache cannot make in place.
    Trn004,
    /// Queues moving to or from a queue Redis while Redis changes mode.
    Trn005,
    /// A spec explicitly weakens a security default.
    Sec001,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Load001 => "LOAD001",
            Load002 => "LOAD002",
            Load003 => "LOAD003",
            Load004 => "LOAD004",
            Load005 => "LOAD005",
            Load006 => "LOAD006",
            Load007 => "LOAD007",
            Load008 => "LOAD008",
            Load009 => "LOAD009",
            Load010 => "LOAD010",
            Ext001 => "EXT001",
            Ext002 => "EXT002",
            Ext003 => "EXT003",
            Sch001 => "SCH001",
            Sch002 => "SCH002",
            Sch003 => "SCH003",
            Sch004 => "SCH004",
            Sch005 => "SCH005",
            Sch006 => "SCH006",
            Sch007 => "SCH007",
            Name001 => "NAME001",
            Safe001 => "SAFE001",
            Phase001 => "PHASE001",
            Phase002 => "PHASE002",
            Phase003 => "PHASE003",
            Pgb001 => "PGB001",
            Pgb002 => "PGB002",
            Pgb003 => "PGB003",
            Pgb004 => "PGB004",
            Pgb005 => "PGB005",
            Pgb006 => "PGB006",
            Pg001 => "PG001",
            Pg002 => "PG002",
            Pg003 => "PG003",
            Red001 => "RED001",
            Red002 => "RED002",
            Red003 => "RED003",
            Red004 => "RED004",
            Red005 => "RED005",
            Red006 => "RED006",
            Red007 => "RED007",
            Red008 => "RED008",
            Red009 => "RED009",
            Red010 => "RED010",
            Red011 => "RED011",
            Red012 => "RED012",
            Red013 => "RED013",
            Red014 => "RED014",
            Ntf001 => "NTF001",
            Ntf002 => "NTF002",
            Reg001 => "REG001",
            Reg002 => "REG002",
            Reg003 => "REG003",
            Reg004 => "REG004",
            Reg005 => "REG005",
            Tf001 => "TF001",
            Cap001 => "CAP001",
            Cap002 => "CAP002",
            Port002 => "PORT002",
            Cmp001 => "CMP001",
            Trn001 => "TRN001",
            Trn002 => "TRN002",
            Trn003 => "TRN003",
            Trn004 => "TRN004",
            Trn005 => "TRN005",
            Sec001 => "SEC001",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code, e.g. RED008.
    #[schemars(with = "String")]
    pub code: Code,
    pub location: Location,
    pub message: String,
    pub help: String,
    /// Further places that take part in the problem (the other duplicate
    /// key, the other file of a cycle).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Location>,
}

impl Diagnostic {
    pub fn error(
        code: Code,
        location: Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            location,
            message: message.into(),
            help: help.into(),
            related: Vec::new(),
        }
    }

    pub fn warning(
        code: Code,
        location: Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, location, message, help)
        }
    }

    pub fn with_related(mut self, location: Location) -> Self {
        self.related.push(location);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(
            f,
            "{label}[{}]: {}: {}",
            self.code, self.location, self.message
        )?;
        for related in &self.related {
            writeln!(f, "  note: see also {related}")?;
        }
        write!(f, "  help: {}", self.help)
    }
}

/// All diagnostics of one run, kept sorted and free of duplicates so that
/// output is deterministic however many phases share a faulty parent.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(ds);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn has_warnings(&self) -> bool {
        self.0.iter().any(|d| !d.is_error())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.0.sort_by(|a, b| {
            (&a.location, a.code, &a.message).cmp(&(&b.location, b.code, &b.message))
        });
        self.0.dedup();
        self.0
    }
}

/// Turns a byte offset into a 1-based line and character column.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let text = "a: 1\nbé: x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 5), (2, 1));
        // 'x' follows a two-byte character: byte 10, column 5.
        assert_eq!(line_col(text, 10), (2, 5));
        assert_eq!(line_col(text, 999), (3, 1));
    }
}

//! A Mermaid flowchart as data: groups (subgraphs) of typed nodes and the
//! edges between them, written out as Mermaid text. Diagrams are built as
//! data, never as strings, so that two of them can be merged (the diff
//! marks what a phase adds and removes) and counted (tests hold structural
//! facts), and so that no label can break the syntax.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What a node is; it decides the node's shape and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Client,
    Edge,
    App,
    Service,
    Worker,
    Proxy,
    Pgbouncer,
    Primary,
    Replica,
    RedisMaster,
    RedisReplica,
    Sentinel,
    Monitor,
    /// A phase of the roadmap.
    Phase,
    /// A step of a transition plan, by risk.
    StepOnline,
    StepRolling,
    StepBrief,
    StepData,
    StepClient,
    StepNoop,
}

impl Kind {
    /// The class name in the diagram, which tests count.
    pub fn class(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Edge => "edge",
            Kind::App => "app",
            Kind::Service => "service",
            Kind::Worker => "worker",
            Kind::Proxy => "proxy",
            Kind::Pgbouncer => "pgbouncer",
            Kind::Primary => "primary",
            Kind::Replica => "replica",
            Kind::RedisMaster => "redis_master",
            Kind::RedisReplica => "redis_replica",
            Kind::Sentinel => "sentinel",
            Kind::Monitor => "monitor",
            Kind::Phase => "phase",
            Kind::StepOnline => "online",
            Kind::StepRolling => "rolling",
            Kind::StepBrief => "brief",
            Kind::StepData => "data",
            Kind::StepClient => "client_change",
            Kind::StepNoop => "noop",
        }
    }

    fn shape(self) -> (&'static str, &'static str) {
        match self {
            Kind::Client | Kind::Phase => ("([", "])"),
            Kind::Primary | Kind::Replica | Kind::RedisMaster | Kind::RedisReplica => ("[(", ")]"),
            Kind::Sentinel => ("{{", "}}"),
            Kind::Proxy | Kind::Edge => ("[[", "]]"),
            Kind::Worker | Kind::Monitor => ("(", ")"),
            _ => ("[", "]"),
        }
    }

    fn style(self) -> &'static str {
        match self {
            Kind::Client => "fill:#f6f8fa,stroke:#57606a",
            Kind::Edge | Kind::Proxy => "fill:#ddf4ff,stroke:#0969da",
            Kind::App | Kind::Service => "fill:#dafbe1,stroke:#1a7f37",
            Kind::Worker => "fill:#fff8c5,stroke:#9a6700",
            Kind::Pgbouncer => "fill:#fbefff,stroke:#8250df",
            Kind::Primary => "fill:#0969da,stroke:#0550ae,color:#ffffff",
            Kind::Replica => "fill:#b6e3ff,stroke:#0550ae",
            Kind::RedisMaster => "fill:#cf222e,stroke:#a40e26,color:#ffffff",
            Kind::RedisReplica => "fill:#ffcecb,stroke:#a40e26",
            Kind::Sentinel => "fill:#fff1e5,stroke:#bc4c00",
            Kind::Monitor => "fill:#eaeef2,stroke:#6e7781",
            Kind::Phase => "fill:#ddf4ff,stroke:#0969da",
            Kind::StepOnline => "fill:#dafbe1,stroke:#1a7f37",
            Kind::StepRolling => "fill:#fff8c5,stroke:#9a6700",
            Kind::StepBrief => "fill:#ffe7d1,stroke:#bc4c00",
            Kind::StepData => "fill:#ffcecb,stroke:#cf222e",
            Kind::StepClient => "fill:#fbefff,stroke:#8250df",
            Kind::StepNoop => "fill:#f6f8fa,stroke:#8c959f",
        }
    }
}

/// In a merged diagram: whether a node or edge is in both, only the new
/// one, or only the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Same,
    Added,
    Removed,
    /// In both, drawn differently (a size or a count changed).
    Changed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: String,
    /// Lines of the label.
    pub label: Vec<String>,
    pub kind: Kind,
    pub mark: Mark,
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub id: String,
    pub label: String,
    pub nodes: Vec<Node>,
    pub groups: Vec<Group>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// Requests and data.
    Solid,
    /// Replication, monitoring: the data path's shadow.
    Dotted,
    /// The order of steps.
    Thick,
}

#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: Option<String>,
    pub line: Line,
    pub mark: Mark,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Direction {
    #[serde(rename = "LR")]
    LeftRight,
    #[serde(rename = "TD")]
    TopDown,
}

/// A flowchart: top-level nodes and groups, then every edge.
#[derive(Clone, Debug, Serialize)]
pub struct Flowchart {
    pub direction: Direction,
    pub nodes: Vec<Node>,
    pub groups: Vec<Group>,
    pub edges: Vec<Edge>,
}

/// A Mermaid identifier from a name: letters, digits and `_` only. Mermaid
/// reads a bare `end` (and a few words like it) as a keyword, so every id
/// carries a prefix.
pub fn id(prefix: &str, name: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + name.len() + 1);
    out.push_str(prefix);
    out.push('_');
    out.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    out
}

/// Label text inside `"..."`: Mermaid's entity codes for the characters
/// that would end the string or open markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '&' => out.push_str("#38;"),
            '<' => out.push_str("#lt;"),
            '#' => out.push_str("#35;"),
            '|' => out.push_str("#124;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("<br/>")
}

impl Node {
    pub fn new(id: String, kind: Kind, label: Vec<String>) -> Node {
        Node {
            id,
            label,
            kind,
            mark: Mark::Same,
        }
    }
}

impl Group {
    pub fn new(id: String, label: impl Into<String>) -> Group {
        Group {
            id,
            label: label.into(),
            nodes: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.extend(self.nodes.iter());
        for g in &self.groups {
            g.walk(out);
        }
    }

    fn group_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.push(&self.id);
        for g in &self.groups {
            g.group_ids(out);
        }
    }
}

impl Edge {
    pub fn new(from: &str, to: &str, label: Option<&str>, line: Line) -> Edge {
        Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            label: label.map(str::to_owned),
            line,
            mark: Mark::Same,
        }
    }

    fn key(&self) -> (&str, &str, Option<&str>) {
        (&self.from, &self.to, self.label.as_deref())
    }
}

impl Flowchart {
    pub fn new(direction: Direction) -> Flowchart {
        Flowchart {
            direction,
            nodes: Vec::new(),
            groups: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// Every node, top-level first, then group by group.
    pub fn all_nodes(&self) -> Vec<&Node> {
        let mut out: Vec<&Node> = self.nodes.iter().collect();
        for g in &self.groups {
            g.walk(&mut out);
        }
        out
    }

    /// How many nodes of this kind (not counting removed ones).
    pub fn count(&self, kind: Kind) -> usize {
        self.all_nodes()
            .iter()
            .filter(|n| n.kind == kind && n.mark != Mark::Removed)
            .count()
    }

    /// Every group's id, duplicates kept (check() refuses them).
    fn group_ids(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for g in &self.groups {
            g.group_ids(&mut out);
        }
        out
    }

    /// Checks that every edge joins nodes or groups the diagram has and
    /// that no id is used twice: Mermaid would draw a stray node for a
    /// typo, not fail.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for n in self.all_nodes() {
            if !seen.insert(n.id.as_str()) {
                return Err(format!("node id {} used twice", n.id));
            }
        }
        for g in self.group_ids() {
            if !seen.insert(g) {
                return Err(format!("group id {g} is also a node or another group"));
            }
        }
        for e in &self.edges {
            for end in [&e.from, &e.to] {
                if !seen.contains(end.as_str()) {
                    return Err(format!(
                        "edge {} -> {}: no node or group {end}",
                        e.from, e.to
                    ));
                }
            }
        }
        Ok(())
    }

    /// The diagram as Mermaid text, ending in a newline.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::new();
        let dir = match self.direction {
            Direction::LeftRight => "LR",
            Direction::TopDown => "TD",
        };
        let _ = writeln!(out, "flowchart {dir}");
        for n in &self.nodes {
            write_node(&mut out, n, 1);
        }
        for g in &self.groups {
            write_group(&mut out, g, 1);
        }
        for e in &self.edges {
            let arrow = match e.line {
                Line::Solid => "-->",
                Line::Dotted => "-.->",
                Line::Thick => "==>",
            };
            match &e.label {
                Some(l) => {
                    let _ = writeln!(out, "  {} {arrow}|\"{}\"| {}", e.from, escape(l), e.to);
                }
                None => {
                    let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
                }
            }
        }
        // Only the classes in use, in a fixed order.
        let kinds: BTreeSet<Kind> = self.all_nodes().iter().map(|n| n.kind).collect();
        for k in kinds {
            let _ = writeln!(out, "  classDef {} {}", k.class(), k.style());
        }
        let marked = |m: Mark| -> Vec<&str> {
            self.all_nodes()
                .iter()
                .filter(|n| n.mark == m)
                .map(|n| n.id.as_str())
                .collect()
        };
        for (mark, class, style) in [
            (
                Mark::Added,
                "added",
                "stroke:#1a7f37,stroke-width:4px,stroke-dasharray:0",
            ),
            (
                Mark::Changed,
                "changed",
                "stroke:#bf8700,stroke-width:4px,stroke-dasharray:0",
            ),
            (
                Mark::Removed,
                "removed",
                "fill:#ffffff,stroke:#cf222e,stroke-width:3px,stroke-dasharray:6 4,color:#cf222e",
            ),
        ] {
            let ids = marked(mark);
            if !ids.is_empty() {
                let _ = writeln!(out, "  classDef {class} {style}");
                let _ = writeln!(out, "  class {} {class}", ids.join(","));
            }
        }
        for (i, e) in self.edges.iter().enumerate() {
            match e.mark {
                Mark::Same | Mark::Changed => {}
                Mark::Added => {
                    let _ = writeln!(out, "  linkStyle {i} stroke:#1a7f37,stroke-width:3px");
                }
                Mark::Removed => {
                    let _ = writeln!(
                        out,
                        "  linkStyle {i} stroke:#cf222e,stroke-width:2px,stroke-dasharray:6 4"
                    );
                }
            }
        }
        out
    }

    /// `new` with what `old` had and `new` has not put back and marked
    /// removed, and what only `new` has marked added: one diagram of a
    /// change.
    pub fn merge(old: &Flowchart, new: &Flowchart) -> Flowchart {
        let old_nodes: BTreeMap<&str, &Node> = old
            .all_nodes()
            .into_iter()
            .map(|n| (n.id.as_str(), n))
            .collect();
        let new_ids: BTreeSet<&str> = new.all_nodes().iter().map(|n| n.id.as_str()).collect();
        let mut out = new.clone();
        mark_nodes(&mut out.nodes, &old_nodes);
        for g in &mut out.groups {
            mark_group(g, &old_nodes);
        }
        // The old nodes the new diagram lacks, each into the same group.
        for n in &old.nodes {
            if !new_ids.contains(n.id.as_str()) {
                out.nodes.push(removed(n));
            }
        }
        for g in &old.groups {
            restore(&mut out.groups, None, g, &new_ids);
        }
        prune(&mut out.groups);
        let old_edges: BTreeSet<_> = old.edges.iter().map(Edge::key).collect();
        let new_edges: BTreeSet<_> = new.edges.iter().map(Edge::key).collect();
        for e in &mut out.edges {
            if !old_edges.contains(&e.key()) {
                e.mark = Mark::Added;
            }
        }
        let kept: BTreeSet<&str> = out.all_nodes().iter().map(|n| n.id.as_str()).collect();
        let groups = out
            .group_ids()
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>();
        let reachable = |id: &str| kept.contains(id) || groups.contains(id);
        let gone: Vec<Edge> = old
            .edges
            .iter()
            .filter(|e| !new_edges.contains(&e.key()) && reachable(&e.from) && reachable(&e.to))
            .map(|e| Edge {
                mark: Mark::Removed,
                ..e.clone()
            })
            .collect();
        out.edges.extend(gone);
        out
    }
}

fn removed(n: &Node) -> Node {
    Node {
        mark: Mark::Removed,
        ..n.clone()
    }
}

fn mark_nodes(nodes: &mut [Node], old: &BTreeMap<&str, &Node>) {
    for n in nodes {
        n.mark = match old.get(n.id.as_str()) {
            None => Mark::Added,
            Some(o) if o.label != n.label || o.kind != n.kind => Mark::Changed,
            Some(_) => Mark::Same,
        };
    }
}

fn mark_group(g: &mut Group, old: &BTreeMap<&str, &Node>) {
    mark_nodes(&mut g.nodes, old);
    for sub in &mut g.groups {
        mark_group(sub, old);
    }
}

/// The group of this id anywhere in the tree.
fn find_group<'a>(groups: &'a mut [Group], id: &str) -> Option<&'a mut Group> {
    for g in groups {
        if g.id == id {
            return Some(g);
        }
        if let Some(found) = find_group(&mut g.groups, id) {
            return Some(found);
        }
    }
    None
}

/// Puts `old`'s nodes that the new diagram lacks back into the group of
/// the same id wherever the new diagram has it (groups move when a phase
/// adds regions), or into a new group under `parent` (the top level when
/// `parent` is None or gone).
fn restore(root: &mut Vec<Group>, parent: Option<&str>, old: &Group, new_ids: &BTreeSet<&str>) {
    if find_group(root, &old.id).is_none() {
        let fresh = Group::new(old.id.clone(), old.label.clone());
        match parent.and_then(|p| find_group(root, p)) {
            Some(p) => p.groups.push(fresh),
            None => root.push(fresh),
        }
    }
    if let Some(target) = find_group(root, &old.id) {
        for n in &old.nodes {
            if !new_ids.contains(n.id.as_str()) {
                target.nodes.push(removed(n));
            }
        }
    }
    for sub in &old.groups {
        restore(root, Some(&old.id), sub, new_ids);
    }
}

/// Drops groups left empty: a box with nothing in it says nothing.
fn prune(groups: &mut Vec<Group>) {
    for g in groups.iter_mut() {
        prune(&mut g.groups);
    }
    groups.retain(|g| !g.nodes.is_empty() || !g.groups.is_empty());
}

fn write_node(out: &mut String, n: &Node, depth: usize) {
    let (open, close) = n.kind.shape();
    let _ = writeln!(
        out,
        "{}{}{open}\"{}\"{close}:::{}",
        "  ".repeat(depth),
        n.id,
        label(&n.label),
        n.kind.class()
    );
}

fn write_group(out: &mut String, g: &Group, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}subgraph {}[\"{}\"]", g.id, escape(&g.label));
    for n in &g.nodes {
        write_node(out, n, depth + 1);
    }
    for sub in &g.groups {
        write_group(out, sub, depth + 1);
    }
    let _ = writeln!(out, "{pad}end");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(nodes: &[&str]) -> Flowchart {
        let mut c = Flowchart::new(Direction::LeftRight);
        let mut g = Group::new("g_pg".into(), "PostgreSQL");
        for n in nodes {
            g.nodes
                .push(Node::new(id("pg", n), Kind::Replica, vec![(*n).into()]));
        }
        c.groups.push(g);
        c.nodes.push(Node::new(
            "c_users".into(),
            Kind::Client,
            vec!["users".into()],
        ));
        for n in nodes {
            c.edges.push(Edge::new(
                "c_users",
                &id("pg", n),
                Some("reads"),
                Line::Solid,
            ));
        }
        c
    }

    #[test]
    fn labels_cannot_break_out_of_their_string() {
        let mut c = Flowchart::new(Direction::TopDown);
        c.nodes.push(Node::new(
            "s_1".into(),
            Kind::StepOnline,
            vec!["a \"quoted\" <b>|x| #1 -> y\nz".into()],
        ));
        let text = c.to_mermaid();
        assert!(
            text.contains("s_1[\"a #quot;quoted#quot; #lt;b>#124;x#124; #35;1 -> y z\"]:::online"),
            "{text}"
        );
    }

    #[test]
    fn ids_are_prefixed_and_plain() {
        assert_eq!(id("pg", "postgres-replica-1"), "pg_postgres_replica_1");
        assert_eq!(id("x", "end"), "x_end");
    }

    #[test]
    fn a_merge_marks_what_was_added_and_removed() {
        let old = chart(&["a", "b"]);
        let mut new = chart(&["b", "c"]);
        new.nodes[0].label.push("more of them".into());
        let m = Flowchart::merge(&old, &new);
        let marks: Vec<(&str, Mark)> = m
            .all_nodes()
            .iter()
            .map(|n| (n.id.as_str(), n.mark))
            .collect();
        assert_eq!(
            marks,
            [
                ("c_users", Mark::Changed),
                ("pg_b", Mark::Same),
                ("pg_c", Mark::Added),
                ("pg_a", Mark::Removed)
            ]
        );
        assert_eq!(m.count(Kind::Replica), 2);
        m.check().unwrap();
        let text = m.to_mermaid();
        assert!(text.contains("class pg_c added"), "{text}");
        assert!(text.contains("class pg_a removed"), "{text}");
        assert!(text.contains("class c_users changed"), "{text}");
        // Edges: users->b same, users->c added (index 1), users->a removed (2).
        assert!(text.contains("linkStyle 1 stroke:#1a7f37"), "{text}");
        assert!(text.contains("linkStyle 2 stroke:#cf222e"), "{text}");
        assert!(!text.contains("linkStyle 0"), "{text}");
    }

    #[test]
    fn a_dangling_edge_or_a_repeated_id_is_refused() {
        let mut c = chart(&["a"]);
        c.edges
            .push(Edge::new("c_users", "pg_zz", None, Line::Solid));
        assert!(c.check().unwrap_err().contains("pg_zz"));
        let mut c = chart(&["a", "a"]);
        c.edges.clear();
        assert!(c.check().unwrap_err().contains("twice"));
    }
}

//! The diagrams of a change: the architecture of two phases merged, with
//! what the later one adds and removes marked; the transition plan's steps
//! as a flow coloured by risk; and the roadmap of every phase with its
//! capacity and bottleneck.

use crate::plan::PlannedPhase;
use crate::render::diagram::architecture;
use crate::render::format::thousands;
use crate::render::mermaid::{Direction, Edge, Flowchart, Kind, Line, Node, id};
use crate::transition::{Plan, Risk};

/// The Mermaid diagrams of one comparison, as text.
#[derive(Clone, Debug)]
pub struct ChangeDiagrams {
    /// Both architectures in one, additions and removals marked.
    pub architecture: String,
    /// The plan's steps in order.
    pub flow: String,
}

/// The diagrams of `from` -> `to` with its plan.
pub fn change(from: &PlannedPhase, to: &PlannedPhase, plan: &Plan) -> ChangeDiagrams {
    let merged = Flowchart::merge(&architecture(from), &architecture(to));
    debug_assert!(merged.check().is_ok(), "{:?}", merged.check());
    ChangeDiagrams {
        architecture: merged.to_mermaid(),
        flow: flow(plan).to_mermaid(),
    }
}

fn risk_kind(r: Risk) -> Kind {
    match r {
        Risk::NoOp => Kind::StepNoop,
        Risk::Online => Kind::StepOnline,
        Risk::RollingRestart => Kind::StepRolling,
        Risk::BriefWriteUnavailability => Kind::StepBrief,
        Risk::DataMigration => Kind::StepData,
        Risk::ClientChangeRequired => Kind::StepClient,
    }
}

/// The plan's steps from the earlier phase to the later one, each
/// coloured by its risk.
pub fn flow(plan: &Plan) -> Flowchart {
    let mut c = Flowchart::new(Direction::TopDown);
    // Apart even when both sides are one phase (two branches' copies).
    let start = id("from", &plan.from);
    let end = id("to", &plan.to);
    c.nodes.push(Node::new(
        start.clone(),
        Kind::Phase,
        vec![
            plan.from.clone(),
            format!(
                "{} users · {}",
                thousands(plan.capacity.before),
                plan.capacity.bottleneck_before.label()
            ),
        ],
    ));
    let mut prev = start;
    for (i, s) in plan.steps.iter().enumerate() {
        let sid = format!("step_{}", i + 1);
        let mut label = vec![format!("{}. {}", i + 1, s.title), s.risk.label().to_owned()];
        if s.capacity_loss {
            label[1].push_str(" · capacity loss");
        }
        if s.not_native.is_some() {
            label.push("not run by migrate".into());
        }
        c.nodes
            .push(Node::new(sid.clone(), risk_kind(s.risk), label));
        c.edges.push(Edge::new(&prev, &sid, None, Line::Thick));
        prev = sid;
    }
    c.nodes.push(Node::new(
        end.clone(),
        Kind::Phase,
        vec![
            plan.to.clone(),
            format!(
                "{} users · {}",
                thousands(plan.capacity.after),
                plan.capacity.bottleneck_after.label()
            ),
        ],
    ));
    c.edges.push(Edge::new(&prev, &end, None, Line::Thick));
    c
}

/// Every phase in rollout order with what it carries and its bottleneck,
/// and between two phases the size and risk of the move.
pub fn roadmap(phases: &[PlannedPhase], plans: &[Plan]) -> Flowchart {
    let mut c = Flowchart::new(Direction::LeftRight);
    for p in phases {
        let spec = p.spec();
        let e = &p.capacity;
        c.nodes.push(Node::new(
            id("phase", p.name()),
            Kind::Phase,
            vec![
                format!("{} · {}", p.name(), p.title),
                format!(
                    "carries {} users (planned {}-{})",
                    thousands(e.capacity),
                    thousands(spec.users.min.into()),
                    thousands(spec.users.max.into())
                ),
                format!(
                    "bottleneck: {} · headroom {:.2}x",
                    e.bottleneck.label(),
                    e.headroom
                ),
            ],
        ));
    }
    for plan in plans {
        c.edges.push(Edge::new(
            &id("phase", &plan.from),
            &id("phase", &plan.to),
            Some(&format!(
                "{} steps · {}",
                plan.steps.len(),
                plan.highest_risk().label()
            )),
            Line::Thick,
        ));
    }
    c
}

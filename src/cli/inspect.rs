//! `scaleplan inspect`: one phase's spec after `extends`, every default
//! filled in.

use super::args::{EXIT_OK, Format, PhasesDir};
use super::session::{self, Request};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    phases: PhasesDir,
    /// The spec's syntax on stdout.
    #[arg(long, value_enum, default_value_t = Output::Yaml)]
    output: Output,
    /// The phase to show.
    name: String,
}

pub(super) fn run(format: Format, args: &Args) -> anyhow::Result<i32> {
    let req = Request {
        names: std::slice::from_ref(&args.name),
        only_selected: true,
        ..Request::all(&args.phases.dir)
    };
    let loaded = match session::load(format, &req)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let value = serde_json::to_value(loaded.one().spec())?;
    match args.output {
        Output::Json => crate::say!("{}", serde_json::to_string_pretty(&value)?),
        Output::Yaml => crate::say_raw!("{}", to_yaml(&value)),
    }
    Ok(EXIT_OK)
}

/// JSON -> YAML text, keeping key order.
fn to_yaml(value: &serde_json::Value) -> String {
    use yaml_rust2::{Yaml, YamlEmitter};
    fn convert(v: &serde_json::Value) -> Yaml {
        match v {
            serde_json::Value::Null => Yaml::Null,
            serde_json::Value::Bool(b) => Yaml::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            serde_json::Value::String(s) => Yaml::String(s.clone()),
            serde_json::Value::Array(a) => Yaml::Array(a.iter().map(convert).collect()),
            serde_json::Value::Object(o) => {
                let mut h = yaml_rust2::yaml::Hash::new();
                for (k, v) in o {
                    h.insert(Yaml::String(k.clone()), convert(v));
                }
                Yaml::Hash(h)
            }
        }
    }
    let mut text = String::new();
    let mut emitter = YamlEmitter::new(&mut text);
    let _ = emitter.dump(&convert(value));
    text.push('\n');
    text
}

//! The passwords of a bring-up. Kept in `<state>/secrets.env` (mode 0600,
//! never under out/) so later bring-ups of the same state directory reuse
//! them; a variable set in the environment replaces the stored value,
//! which is how a password is rotated.

use crate::plan::identity::Secret;
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Secrets {
    values: Vec<(Secret, String)>,
    /// The superuser password the data directory was initialised with,
    /// where the environment now names another: bring-up logs in with it
    /// once to set the new one.
    pub superuser_before: Option<String>,
}

fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Secrets reach config files and shell scripts, so they are plain words.
pub fn valid_secret(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Secrets {
    pub fn get(&self, secret: Secret) -> &str {
        self.values
            .iter()
            .find(|(s, _)| *s == secret)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `text` with every `${VAR}` reference to a secret's variable
    /// replaced by its value (a rendered contract, filled in).
    pub fn fill(&self, text: &str) -> String {
        crate::plan::contract::substitute(text, |name| {
            Secret::ALL
                .iter()
                .find(|s| s.var() == name)
                .map(|s| self.get(*s).to_owned())
        })
    }

    /// The variables that carry the secrets, as the start scripts and
    /// Compose read them.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        self.values
            .iter()
            .map(|(s, v)| (s.var(), v.as_str()))
            .collect()
    }

    /// The stored secrets, replaced by any set in the environment, and a
    /// random one for each still missing; written back for the next
    /// bring-up.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Secrets> {
        let path = dir.join("secrets.env");
        let stored: Vec<(String, String)> = std::fs::read_to_string(&path)
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let mut values = Vec::new();
        let mut superuser_before = None;
        for secret in Secret::ALL {
            let var = secret.var();
            let before = stored.iter().find(|(k, _)| k == var).map(|(_, v)| v);
            let value = match std::env::var(var) {
                Ok(v) if valid_secret(&v) => v,
                Ok(_) => bail!("{var} may use letters, digits, '_', '.' and '-' only"),
                Err(_) => match before {
                    Some(v) => v.clone(),
                    None => random_secret()?,
                },
            };
            if secret == Secret::Postgres {
                superuser_before = before.filter(|b| **b != value).cloned();
            }
            values.push((secret, value));
        }
        let text: String = values
            .iter()
            .map(|(s, v)| format!("{}={v}\n", s.var()))
            .collect();
        write_private(&path, &text)?;
        Ok(Secrets {
            values,
            superuser_before,
        })
    }

    /// A secret outside the contract (Grafana's admin password), kept in
    /// the state directory the same way: generated once, readable by its
    /// owner only.
    pub fn kept(&self, dir: &Path, var: &str) -> anyhow::Result<String> {
        let path = dir.join(format!("{var}.secret"));
        if let Ok(v) = std::fs::read_to_string(&path)
            && valid_secret(v.trim())
        {
            return Ok(v.trim().to_owned());
        }
        let value = random_secret()?;
        write_private(&path, &value)?;
        Ok(value)
    }
}

/// Writes a file only its owner may read.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

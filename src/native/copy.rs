//! Redis data moved into a cluster: every key of database 0 of a source
//! node copied with its TTL into the master of its slot (DUMP, then
//! RESTORE ... REPLACE), keys the source no longer has removed from the
//! cluster, and the check that the cluster holds what the source holds.
//! The source is only ever read. Everything is pipelined by batch, and
//! each pass can be given a deadline it stops at.

use super::resp::{Conn, Reply, keyslot, scan};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::time::Instant;

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Keys the source holds.
    pub keys: u64,
    pub with_ttl: u64,
    /// Keys written into the cluster (all of them on a first copy; on a
    /// later one, only those that differed).
    pub restored: u64,
}

/// What the check found: the cluster holds each of the source's keys with
/// the same value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub keys: u64,
    pub with_ttl: u64,
    /// FNV-1a over every key and its DUMP payload, in key order: the same
    /// on both sides when every value arrived intact.
    pub checksum: u64,
}

/// A key's serialized value (DUMP) and its time to live in ms (PTTL, -1
/// for none).
type Dumped = (Vec<u8>, i64);

/// Connections to the cluster's masters, by slot range.
struct Cluster {
    owners: Vec<(u16, u16, u16)>,
    conns: BTreeMap<u16, Conn>,
    password: String,
}

impl Cluster {
    fn open(seed: u16, password: &str) -> anyhow::Result<Cluster> {
        let mut conn = Conn::open(seed, password)?;
        let reply = conn.call(&[b"CLUSTER", b"SLOTS"])?;
        let mut owners = Vec::new();
        for range in reply.items() {
            let items = range.items();
            let (Some(start), Some(end)) = (
                items.first().and_then(Reply::int),
                items.get(1).and_then(Reply::int),
            ) else {
                continue;
            };
            let port = items
                .get(2)
                .and_then(|m| m.items().get(1))
                .and_then(Reply::int)
                .context("CLUSTER SLOTS without a master port")?;
            owners.push((start as u16, end as u16, port as u16));
        }
        Ok(Cluster {
            owners,
            conns: BTreeMap::new(),
            password: password.to_owned(),
        })
    }

    fn owner(&self, key: &[u8]) -> anyhow::Result<u16> {
        let slot = keyslot(key);
        self.owners
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| *port)
            .with_context(|| format!("no master serves slot {slot}"))
    }

    fn masters(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.owners.iter().map(|o| o.2).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    fn conn(&mut self, port: u16) -> anyhow::Result<&mut Conn> {
        Ok(match self.conns.entry(port) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Conn::open(port, &self.password)?)
            }
        })
    }

    /// The keys grouped by the master of their slot.
    fn by_owner<'k>(&self, keys: &'k [Vec<u8>]) -> anyhow::Result<BTreeMap<u16, Vec<&'k Vec<u8>>>> {
        let mut out: BTreeMap<u16, Vec<&Vec<u8>>> = BTreeMap::new();
        for key in keys {
            out.entry(self.owner(key)?).or_default().push(key);
        }
        Ok(out)
    }

    /// DUMP and PTTL of keys that live on one master.
    fn dump(&mut self, port: u16, keys: &[&Vec<u8>]) -> anyhow::Result<Vec<Option<Dumped>>> {
        let owned: Vec<Vec<u8>> = keys.iter().map(|k| (*k).clone()).collect();
        dump(self.conn(port)?, &owned)
    }
}

fn past(deadline: Option<Instant>, what: &str) -> anyhow::Result<()> {
    if deadline.is_some_and(|d| Instant::now() > d) {
        bail!("{what} ran past its deadline");
    }
    Ok(())
}

/// DUMP and PTTL of each key; None for a key that is gone (or expired).
fn dump(conn: &mut Conn, keys: &[Vec<u8>]) -> anyhow::Result<Vec<Option<Dumped>>> {
    let commands: Vec<Vec<&[u8]>> = keys
        .iter()
        .flat_map(|k| [vec![&b"DUMP"[..], k], vec![&b"PTTL"[..], k]])
        .collect();
    let replies = conn.pipeline(&commands)?;
    Ok(replies
        .chunks(2)
        .map(|pair| match (&pair[0], pair[1].int()) {
            (Reply::Bulk(Some(payload)), Some(ttl)) if ttl != -2 => Some((payload.clone(), ttl)),
            _ => None,
        })
        .collect())
}

/// Copies every key of the source into the cluster with its TTL. With
/// `only_changed`, a key the cluster already holds with the same DUMP
/// payload is left alone, so a second pass writes only what changed since
/// the first. The source is only read: nothing is deleted from it.
pub fn copy_keys(
    source: u16,
    seed: u16,
    password: &str,
    only_changed: bool,
    deadline: Option<Instant>,
) -> anyhow::Result<Copied> {
    let mut src = Conn::open(source, password)?;
    refuse_other_databases(&mut src)?;
    let mut cluster = Cluster::open(seed, password)?;
    let mut copied = Copied::default();
    scan(&mut src, None, |src, keys| {
        past(deadline, "the copy")?;
        let here = dump(src, &keys)?;
        let found: Vec<(Vec<u8>, Dumped)> = keys
            .into_iter()
            .zip(here)
            .filter_map(|(k, d)| Some((k, d?)))
            .collect();
        let names: Vec<Vec<u8>> = found.iter().map(|(k, _)| k.clone()).collect();
        let values: BTreeMap<&Vec<u8>, &Dumped> = found.iter().map(|(k, d)| (k, d)).collect();
        for (port, keys) in cluster.by_owner(&names)? {
            let there = if only_changed {
                cluster.dump(port, &keys)?
            } else {
                vec![None; keys.len()]
            };
            let mut restores: Vec<Vec<Vec<u8>>> = Vec::new();
            for (key, theirs) in keys.iter().zip(there) {
                let (payload, ttl) = values[key];
                copied.keys += 1;
                if *ttl > 0 {
                    copied.with_ttl += 1;
                }
                if theirs.is_some_and(|(p, _)| p == *payload) {
                    continue;
                }
                restores.push(vec![
                    b"RESTORE".to_vec(),
                    (*key).clone(),
                    (*ttl).max(0).to_string().into_bytes(),
                    payload.clone(),
                    b"REPLACE".to_vec(),
                ]);
            }
            copied.restored += restores.len() as u64;
            let args: Vec<Vec<&[u8]>> = restores
                .iter()
                .map(|c| c.iter().map(Vec::as_slice).collect())
                .collect();
            for reply in cluster.conn(port)?.pipeline(&args)? {
                if let Reply::Error(e) = reply {
                    bail!("RESTORE on port {port}: {e}");
                }
            }
        }
        Ok(())
    })?;
    Ok(copied)
}

/// Removes from the cluster every key the source does not hold (deleted
/// or expired there since an earlier copy). Returns how many.
pub fn remove_extra_keys(
    source: u16,
    seed: u16,
    password: &str,
    deadline: Option<Instant>,
) -> anyhow::Result<u64> {
    let mut src = Conn::open(source, password)?;
    let cluster = Cluster::open(seed, password)?;
    let mut removed = 0;
    for port in cluster.masters() {
        let mut master = Conn::open(port, password)?;
        let mut extra: Vec<Vec<u8>> = Vec::new();
        scan(&mut master, None, |_, keys| {
            past(deadline, "the removal of keys the source lacks")?;
            let commands: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![&b"EXISTS"[..], k]).collect();
            let exists = src.pipeline(&commands)?;
            extra.extend(
                keys.into_iter()
                    .zip(exists)
                    .filter(|(_, e)| e.int() == Some(0))
                    .map(|(k, _)| k),
            );
            Ok(())
        })?;
        for batch in extra.chunks(500) {
            let commands: Vec<Vec<&[u8]>> = batch.iter().map(|k| vec![&b"DEL"[..], k]).collect();
            master.pipeline(&commands)?;
            removed += batch.len() as u64;
        }
    }
    Ok(removed)
}

/// Reads every key of the source back from the cluster: the same DUMP
/// payload, and a TTL where the source has one; and the cluster's masters
/// hold as many keys as the source. Fails listing the first keys that
/// differ.
pub fn check_copy(
    source: u16,
    seed: u16,
    password: &str,
    deadline: Option<Instant>,
) -> anyhow::Result<Checked> {
    let mut src = Conn::open(source, password)?;
    let mut cluster = Cluster::open(seed, password)?;
    let mut seen: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut with_ttl = 0;
    let mut wrong: Vec<String> = Vec::new();
    scan(&mut src, None, |src, keys| {
        past(deadline, "the check")?;
        let here = dump(src, &keys)?;
        let values: BTreeMap<&Vec<u8>, Dumped> = keys
            .iter()
            .zip(here)
            .filter_map(|(k, d)| Some((k, d?)))
            .collect();
        let present: Vec<Vec<u8>> = values.keys().map(|k| (*k).clone()).collect();
        for (port, keys) in cluster.by_owner(&present)? {
            let there = cluster.dump(port, &keys)?;
            for (key, theirs) in keys.into_iter().zip(there) {
                let (payload, ttl) = &values[key];
                let same = theirs.is_some_and(|(p, t)| p == *payload && (*ttl > 0) == (t > 0));
                if same {
                    if *ttl > 0 {
                        with_ttl += 1;
                    }
                    seen.insert(key.clone(), fnv(payload));
                } else if wrong.len() < 10 {
                    wrong.push(String::from_utf8_lossy(key).into_owned());
                }
            }
        }
        Ok(())
    })?;
    if !wrong.is_empty() {
        bail!(
            "the cluster does not hold these keys as the source does: {}",
            wrong.join(", ")
        );
    }
    let mut held = 0;
    for port in cluster.masters() {
        held += cluster
            .conn(port)?
            .call(&[b"DBSIZE"])?
            .int()
            .context("DBSIZE without a number")?;
    }
    if held != seen.len() as i64 {
        bail!(
            "the cluster's masters hold {held} keys, the source {}",
            seen.len()
        );
    }
    let mut checksum = FNV_OFFSET;
    for (key, value) in &seen {
        checksum = fnv_step(fnv_step(checksum, key), &value.to_le_bytes());
    }
    Ok(Checked {
        keys: seen.len() as u64,
        with_ttl,
        checksum,
    })
}

/// A cluster holds database 0 only; keys elsewhere would be left behind.
fn refuse_other_databases(conn: &mut Conn) -> anyhow::Result<()> {
    let info = conn
        .call(&[b"INFO", b"keyspace"])?
        .text()
        .unwrap_or_default();
    let others: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("db") && !l.starts_with("db0:"))
        .collect();
    if !others.is_empty() {
        bail!(
            "the old Redis has keys outside database 0 ({}), which a cluster cannot hold: move them into database 0 first",
            others.join(", ")
        );
    }
    Ok(())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn fnv(bytes: &[u8]) -> u64 {
    fnv_step(FNV_OFFSET, bytes)
}

//! A small blocking Redis client (RESP2) for what the bring-up does to
//! data: copying keys into a cluster and checking the copy. One command or
//! a pipelined batch at a time, with a timeout on every read and write.
//! (redis-cli is enough for everything else; the redis crate would bring
//! URL and Unicode handling this does not need.)

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply, as RESP2 has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// Every key of database 0 of `conn` (those matching `pattern`, where
/// given), in SCAN's batches, each handed to `each` with the connection.
/// SCAN ends when its cursor comes back to 0.
pub fn scan(
    conn: &mut Conn,
    pattern: Option<&[u8]>,
    mut each: impl FnMut(&mut Conn, Vec<Vec<u8>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor = b"0".to_vec();
    loop {
        let mut args: Vec<&[u8]> = vec![b"SCAN", &cursor, b"COUNT", b"500"];
        if let Some(p) = pattern {
            args.extend([b"MATCH".as_slice(), p]);
        }
        let reply = conn.call(&args)?;
        let items = reply.items();
        let next = items
            .first()
            .and_then(Reply::bytes)
            .context("SCAN without a cursor")?
            .to_vec();
        let keys: Vec<Vec<u8>> = items
            .get(1)
            .map(|k| {
                k.items()
                    .iter()
                    .filter_map(Reply::bytes)
                    .map(<[u8]>::to_vec)
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            each(conn, keys)?;
        }
        if next == b"0" {
            return Ok(());
        }
        cursor = next;
    }
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to 127.0.0.1:`port` and authenticates.
    pub fn open(port: u16, password: &str) -> anyhow::Result<Conn> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .with_context(|| format!("connecting to Redis on port {port}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut conn = Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        match conn.call(&[b"AUTH", password.as_bytes()])? {
            Reply::Status(_) => Ok(conn),
            other => bail!("Redis on port {port} refused the password: {other:?}"),
        }
    }

    /// One command; an error reply is an Err.
    pub fn call(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        let mut replies = self.pipeline(&[args.to_vec()])?;
        match replies.pop() {
            Some(Reply::Error(e)) => bail!("{}: {e}", String::from_utf8_lossy(args[0])),
            Some(reply) => Ok(reply),
            None => bail!("no reply"),
        }
    }

    /// Whether this node is a master now (ROLE's first item).
    pub fn is_master(&mut self) -> anyhow::Result<bool> {
        let role = self.call(&[b"ROLE"])?;
        Ok(role.items().first().and_then(Reply::text).as_deref() == Some("master"))
    }

    /// Sends every command, then reads every reply (errors among them).
    pub fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> anyhow::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out)?;
        commands.iter().map(|_| self.read()).collect()
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("Redis closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read(&mut self) -> anyhow::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(rest.parse().context("an integer reply")?),
            "$" => {
                let len: i64 = rest.parse().context("a bulk length")?;
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(len as usize);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let len: i64 = rest.parse().context("an array length")?;
                if len < 0 {
                    Reply::Array(None)
                } else {
                    Reply::Array(Some(
                        (0..len).map(|_| self.read()).collect::<Result<_, _>>()?,
                    ))
                }
            }
            _ => bail!("not a RESP reply: {line:?}"),
        })
    }
}

/// The cluster slot of a key: CRC16 (XMODEM) of the key, or of its hash
/// tag (the text between the first '{' and the next '}', when not empty),
/// modulo 16384.
pub fn keyslot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        key[open + 1..]
            .iter()
            .position(|&b| b == b'}')
            .filter(|&len| len > 0)
            .map(|len| &key[open + 1..open + 1 + len])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    #[test]
    fn slots_follow_the_cluster_specification() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(keyslot(b"foo"), 12182);
        assert_eq!(keyslot(b"{user1000}.following"), keyslot(b"user1000"));
        assert_eq!(keyslot(b"foo{}{bar}"), keyslot(b"foo{}{bar}"));
        assert_eq!(keyslot(b"{}bar"), crc16(b"{}bar") % 16384);
    }
}

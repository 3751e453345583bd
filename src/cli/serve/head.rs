//! A connection's first request head, read before hyper parses it. hyper
//! answers a request target over 64 KB, more headers than it parses, or a
//! head larger than its buffer with a bare status and no body, and offers
//! no hook to say more. Read here first, a head past scaleplan's own
//! bounds (`api::MAX_TARGET`, `api::MAX_HEADERS`, `MAX_HEAD`) gets the
//! same problem+json the router gives a smaller one; any other is handed
//! to hyper as read (`Rewind`). A later request on a kept-alive connection
//! is hyper's to parse: the router's bounds answer it up to hyper's own.

use super::api::{MAX_HEADERS, MAX_TARGET};
use super::problem::Problem;
use axum::http::StatusCode;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest request head scaleplan reads (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;

/// What became of a connection's first head.
pub enum Screened {
    /// Within the bounds (or not a head at all, which hyper refuses): the
    /// bytes read so far, for hyper to read first.
    Pass(Vec<u8>),
    /// Answered here with a problem, or the client went quiet or away.
    Done,
}

/// Reads the first head of `stream` for at most `timeout` (the header
/// read timeout hyper applies after it) and answers it when it is past a
/// bound.
pub async fn screen(stream: &mut TcpStream, timeout: Duration) -> Screened {
    let mut buf = Vec::with_capacity(4096);
    let read = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 8192];
        while judge(&buf).is_none() && !complete(&buf) {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        std::io::Result::Ok(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        // The header timeout, or a reset: hyper would close it too.
        return Screened::Done;
    }
    match judge(&buf) {
        None => Screened::Pass(buf),
        Some(problem) => {
            answer(stream, problem).await;
            Screened::Done
        }
    }
}

/// The head has ended (a blank line), or it is as long as it may be.
fn complete(buf: &[u8]) -> bool {
    head_end(buf).is_some() || buf.len() >= MAX_HEAD
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The problem with what has been read of a head, once it is certain.
fn judge(buf: &[u8]) -> Option<Problem> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n");
    let line = &buf[..line_end.unwrap_or(buf.len())];
    // METHOD SP TARGET SP VERSION: the target is known to be too long as
    // soon as that many of its bytes have come, whether or not it ended.
    let target = line
        .iter()
        .position(|&b| b == b' ')
        .map(|sp| {
            let rest = &line[sp + 1..];
            rest.iter()
                .position(|&b| b == b' ')
                .map_or(rest.len(), |e| e)
        })
        .unwrap_or(0);
    if target > MAX_TARGET {
        let detail = if line_end.is_some() {
            format!("the request target is {target} bytes; at most {MAX_TARGET}")
        } else {
            format!("the request target is over {MAX_TARGET} bytes; at most {MAX_TARGET}")
        };
        return Some(Problem::new(StatusCode::URI_TOO_LONG, detail));
    }
    let end = head_end(buf);
    let headers_part =
        &buf[line_end.map_or(buf.len(), |e| e + 2)..end.map_or(buf.len(), |e| e + 2)];
    let headers = headers_part.windows(2).filter(|w| w == b"\r\n").count();
    if headers > MAX_HEADERS {
        return Some(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request has {headers} headers; at most {MAX_HEADERS}"),
        ));
    }
    if end.is_none() && buf.len() >= MAX_HEAD {
        return Some(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request head is over {} KiB; at most {} KiB",
                MAX_HEAD / 1024,
                MAX_HEAD / 1024
            ),
        ));
    }
    None
}

/// The problem as an HTTP/1.1 response, then the connection closed: the
/// write side first, and what the client still sends read and dropped
/// for a moment, so that closing does not reset the answer away.
async fn answer(stream: &mut TcpStream, problem: Problem) {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_string_pretty(&problem).unwrap_or_default() + "\n";
    let response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 8192];
        let mut left: usize = 1024 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// A stream whose first bytes were already read: they are read again
/// first, then the stream's own.
pub struct Rewind {
    read: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl Rewind {
    pub fn new(read: Vec<u8>, stream: TcpStream) -> Rewind {
        Rewind {
            read,
            at: 0,
            stream,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.read.len() {
            let n = out.remaining().min(self.read.len() - self.at);
            let at = self.at;
            out.put_slice(&self.read[at..at + n]);
            self.at += n;
            if self.at == self.read.len() {
                self.read = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, out)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target_len: usize, headers: usize) -> Vec<u8> {
        let mut h = format!("GET /{} HTTP/1.1\r\n", "a".repeat(target_len - 1));
        for i in 0..headers {
            h.push_str(&format!("x-{i}: 1\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    #[test]
    fn heads_within_the_bounds_pass() {
        assert!(judge(&head(10, 3)).is_none());
        assert!(judge(&head(MAX_TARGET, MAX_HEADERS)).is_none());
        // Half a head: nothing certain yet.
        assert!(judge(b"GET /v1/pha").is_none());
    }

    #[test]
    fn a_long_target_is_414_even_before_its_line_ends() {
        let p = judge(&head(MAX_TARGET + 1, 0)).unwrap();
        assert_eq!(p.status, 414);
        assert!(p.detail.contains(&format!("{} bytes", MAX_TARGET + 1)));
        let partial = format!("GET /{}", "a".repeat(MAX_TARGET + 10));
        let p = judge(partial.as_bytes()).unwrap();
        assert_eq!(p.status, 414);
        assert!(p.detail.contains("over"));
    }

    #[test]
    fn many_headers_or_a_huge_head_is_431() {
        let p = judge(&head(10, MAX_HEADERS + 1)).unwrap();
        assert_eq!(p.status, 431);
        let mut huge = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        assert_eq!(judge(&huge).unwrap().status, 431);
    }
}

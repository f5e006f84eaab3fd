//! problem+json for the requests the HTTP layer answers itself.
//!
//! actix-http answers a request it cannot read before any service sees it: a malformed request line, header
//! or chunked body (`400`), a head over its limit (`431`), a head that does not arrive in time (`408`). It
//! writes a fixed, empty response and closes the connection; no middleware runs. [`ProblemIo`] wraps each
//! connection's stream and, when such a response is written, writes a problem+json one of the same status in
//! its place (with a new `X-Request-Id`, as every answer has one).
//!
//! Recognised exactly: the status line and `content-length: 0` that actix-http writes for these, as the last
//! thing written on the connection (it closes right after). The api's own answers with these statuses always
//! have a problem body, so they never match.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use securecrud_auth::{ErrorCode, problem::request_id};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The status lines of the empty answers actix-http makes itself, each with its problem code.
const BARE_ANSWERS: [(&[u8], ErrorCode, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        ErrorCode::BadRequest,
        "The request is not valid HTTP/1.1 (its request line, a header or its framing).",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ErrorCode::HeadersTooLarge,
        "The request line and headers together are over the server's limit.",
    ),
    (
        b"HTTP/1.1 408 Request Timeout\r\n",
        ErrorCode::RequestTimeout,
        "The request's head did not arrive in time.",
    ),
];

/// A connection's stream, whose bare HTTP-layer error answers become problem+json (see the module).
#[derive(Debug)]
pub struct ProblemIo<T> {
    inner: T,
    /// The problem answer still to write, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is left of the replacement. Ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_some() {
            // The error answer was the last; anything after it is dropped with the connection.
            ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        let Some((start, replacement)) = bare_answer(buf) else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if start > 0 {
            // Answers written before it (pipelined requests) go out first, as they are.
            return Pin::new(&mut this.inner).poll_write(cx, &buf[..start]);
        }
        this.replacement = Some((replacement, 0));
        // The bare answer counts as written: the dispatcher is done with it.
        match this.poll_replacement(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// If `written` ends with one of actix-http's bare answers: where it starts, and the problem+json answer to
/// write instead.
fn bare_answer(written: &[u8]) -> Option<(usize, Vec<u8>)> {
    if !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    BARE_ANSWERS.iter().find_map(|(line, code, detail)| {
        let start = memchr::memmem::rfind(written, line)?;
        let head = &written[start..];
        // The whole rest is one head, without a body, and says so.
        let one_head = memchr::memmem::find(head, b"\r\n\r\n") == Some(head.len() - 4);
        let empty = memchr::memmem::find(head, b"\r\ncontent-length: 0\r\n").is_some();
        (one_head && empty).then(|| (start, problem_answer(*code, detail)))
    })
}

/// A complete HTTP/1.1 answer: `code`'s status and a problem+json body, closing the connection.
fn problem_answer(code: ErrorCode, detail: &str) -> Vec<u8> {
    let id = request_id::generate();
    let body = serde_json::json!({
        "type": code.type_uri(),
        "title": code.title(),
        "status": code.status(),
        "detail": detail,
        "code": code,
        "request_id": id,
    })
    .to_string();
    let reason = match code.status() {
        400 => "Bad Request",
        408 => "Request Timeout",
        _ => "Request Header Fields Too Large",
    };
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n\
         {}: {id}\r\n\r\n{body}",
        code.status(),
        body.len(),
        request_id::HEADER,
    )
    .into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BARE_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\
                              date: Sun, 06 Dec 2026 04:00:00 GMT\r\n\r\n";

    fn parts(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn actix_https_bare_answers_become_problems_of_the_same_status() {
        for (bare, status, code) in [
            (BARE_400.to_vec(), 400, "bad_request"),
            (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
                431,
                "headers_too_large",
            ),
            (
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
                408,
                "request_timeout",
            ),
        ] {
            let (start, answer) = bare_answer(&bare).unwrap();
            assert_eq!(start, 0);
            let (head, body) = parts(&answer);
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains("content-type: application/problem+json"));
            assert!(head.contains(&format!("content-length: {}", body.to_string().len())));
            assert_eq!(body["status"], status);
            assert_eq!(body["code"], code);
            let id = body["request_id"].as_str().unwrap();
            assert!(head.contains(&format!("x-request-id: {id}")));
        }
    }

    #[test]
    fn an_answer_before_the_bare_one_is_kept_and_the_apis_own_answers_pass() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let pipelined = [ok.as_slice(), BARE_400].concat();
        assert_eq!(bare_answer(&pipelined).unwrap().0, ok.len());

        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\n\r\n{\"a\":\"b\"}\n";
        assert!(bare_answer(own).is_none());
        let unfinished = &BARE_400[..BARE_400.len() - 2];
        assert!(bare_answer(unfinished).is_none());
        let with_body_after = [BARE_400, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"].concat();
        assert!(bare_answer(&with_body_after).is_none());
    }
}

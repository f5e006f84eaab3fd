//! problem+json for the requests the HTTP layer answers itself.
//!
//! actix-http answers a request it cannot read before any service sees it: a malformed request line, header
//! or chunked body (`400`), a head over its limit (`431`), a head that does not arrive in time (`408`). It
//! writes a fixed, empty response and closes the connection; no middleware runs. [`ProblemIo`] wraps each
//! connection's stream and, when such a response is written, writes a problem+json one of the same status in
//! its place, with the headers every answer has (a new `X-Request-Id`, the security headers, the bare answer's
//! `Date`), and logs it in the access log.
//!
//! Recognised exactly: the status line and `content-length: 0` that actix-http writes for these, as the last
//! thing written on the connection (it closes right after). The api's own answers with these statuses always
//! have a problem body, so they never match.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use securecrud_auth::{
    ErrorCode,
    problem::{Problem, request_id},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The status lines (after `HTTP/1.x `) of the empty answers actix-http makes itself, with their problem codes.
const BARE_ANSWERS: [(&[u8], ErrorCode, &str); 3] = [
    (
        b" 400 Bad Request\r\n",
        ErrorCode::BadRequest,
        "The request is not valid HTTP/1.1 (its request line, a header or its framing).",
    ),
    (
        b" 431 Request Header Fields Too Large\r\n",
        ErrorCode::HeadersTooLarge,
        "The request line and headers together are over the server's limit.",
    ),
    (
        b" 408 Request Timeout\r\n",
        ErrorCode::RequestTimeout,
        "The request's head did not arrive in time.",
    ),
];

/// The versions actix-http answers in: 1.1, or 1.0 after an HTTP/1.0 request on the same connection.
const VERSIONS: [&[u8]; 2] = [b"HTTP/1.1", b"HTTP/1.0"];

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
        // The bare answer counts as written only once its replacement is: actix-http drops the connection as
        // soon as it believes its last answer is out, without flushing. Until then it writes the same bytes
        // again, and the branch above drives the replacement.
        ready!(this.poll_replacement(cx))?;
        Poll::Ready(Ok(buf.len()))
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
    let lines = VERSIONS.iter().flat_map(|version| {
        BARE_ANSWERS
            .iter()
            .map(move |(status, code, detail)| ([*version, *status].concat(), *code, *detail))
    });
    for (line, code, detail) in lines {
        let Some(start) = memchr::memmem::rfind(written, &line) else {
            continue;
        };
        let head = &written[start..];
        // The whole rest is one head, without a body, and says so.
        let one_head = memchr::memmem::find(head, b"\r\n\r\n") == Some(head.len() - 4);
        let empty = memchr::memmem::find(head, b"\r\ncontent-length: 0\r\n").is_some();
        if one_head && empty {
            return Some((start, problem_answer(code, detail, date_line(head))));
        }
    }
    None
}

/// The `date: …\r\n` line of a head, if it has one.
fn date_line(head: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(head, b"\r\ndate: ")? + 2;
    let length = memchr::memmem::find(&head[start..], b"\r\n")? + 2;
    Some(&head[start..start + length])
}

/// A complete HTTP/1.1 answer: `code`'s status and a problem+json body, closing the connection. Logged as a
/// request of the access log (its method and path could not be read).
fn problem_answer(code: ErrorCode, detail: &str, date: Option<&[u8]>) -> Vec<u8> {
    let id = request_id::generate();
    log::info!(
        target: "securecrud::access",
        method = "", path = "", status = code.status(), request_id = id.as_str();
        "request not read: {}", code.as_str()
    );
    // Strings and numbers: serialising cannot fail.
    let body = serde_json::to_string(&Problem::new(code, detail, id.as_str())).unwrap_or_default();
    let reason = match code.status() {
        400 => "Bad Request",
        408 => "Request Timeout",
        _ => "Request Header Fields Too Large",
    };
    let mut headers = actix_web::http::header::HeaderMap::new();
    crate::middleware::set_security_headers(&mut headers);
    let mut answer = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n{}: {id}\r\n",
        code.status(),
        body.len(),
        request_id::HEADER,
    )
    .into_bytes();
    for (name, value) in &headers {
        answer.extend_from_slice(name.as_str().as_bytes());
        answer.extend_from_slice(b": ");
        answer.extend_from_slice(value.as_bytes());
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(date.unwrap_or_default());
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    answer
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
            assert!(head.contains("x-frame-options: DENY"), "{head}");
            assert!(head.contains("content-security-policy: "), "{head}");
        }
        let (_, answer) = bare_answer(BARE_400).unwrap();
        let (head, _) = parts(&answer);
        assert!(
            head.contains("\r\ndate: Sun, 06 Dec 2026 04:00:00 GMT"),
            "{head}"
        );
        let http_1_0 = b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(bare_answer(http_1_0).is_some());
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

//! A subscriber of the revocation feed (`GET /api/v1/auth/revocations`), reading its Server-Sent Events as
//! a client library would: lines, split at blank lines into events and comments.

use std::time::Duration;

use reqwest::Response;
use serde_json::Value;

/// One `revoked` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub cursor: i64,
    pub sid: String,
    pub until: i64,
}

/// What the stream said next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Revoked(Revoked),
    /// A comment line (the keep-alive), or a `retry:` field alone.
    Comment(String),
}

/// An open feed.
#[derive(Debug)]
pub struct Feed {
    response: Response,
    buffer: String,
}

impl Feed {
    /// Takes an answer that must be the feed's `200` with `text/event-stream`.
    pub fn new(response: Response) -> Self {
        assert_eq!(response.status(), 200, "the feed opens");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event or comment within `wait`; `None` when the wait ran out. Panics when the stream ends.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Said> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(block.trim_end_matches('\n')));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Err(_) => return None,
                Ok(chunk) => {
                    let chunk = chunk
                        .expect("the stream reads")
                        .expect("the stream is still open");
                    self.buffer
                        .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
                }
            }
        }
    }

    /// The next `revoked` event within `wait`, skipping comments; `None` when the wait ran out.
    pub async fn revoked_within(&mut self, wait: Duration) -> Option<Revoked> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await? {
                Said::Revoked(revoked) => return Some(revoked),
                Said::Comment(_) => {}
            }
        }
    }

    /// Every `revoked` event until none came for `quiet`.
    pub async fn revoked_until_quiet(&mut self, quiet: Duration) -> Vec<Revoked> {
        let mut all = Vec::new();
        while let Some(revoked) = self.revoked_within(quiet).await {
            all.push(revoked);
        }
        all
    }

    /// Whether the server ended the stream within `wait` (events meanwhile are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(None) | Err(_)) => return true,
                Ok(Ok(Some(_))) => {}
            }
        }
    }
}

fn parse(block: &str) -> Said {
    let mut event = None;
    let mut id = None;
    let mut data = None;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            return Said::Comment(comment.trim().to_owned());
        }
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.parse::<i64>().expect("a numeric id")),
            "data" => data = Some(value.to_owned()),
            "retry" => return Said::Comment(line.to_owned()),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    assert_eq!(event.as_deref(), Some("revoked"), "{block:?}");
    let data: Value = serde_json::from_str(&data.expect("data")).expect("JSON data");
    Said::Revoked(Revoked {
        cursor: id.expect("an id"),
        sid: data["sid"].as_str().expect("sid").to_owned(),
        until: data["until"].as_i64().expect("until"),
    })
}

//! The revocation feed's answer: `200` with a `text/event-stream` body (Server-Sent Events) that stays
//! open, one event per ended session and a comment line when there is nothing to say.

use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, Responder, body::BoxBody, http::header, web::Bytes};
use futures_util::{Stream, StreamExt, stream::LocalBoxStream};
use paperclip::{
    actix::OperationModifier,
    v2::{
        models::{DataType, DefaultOperationRaw, DefaultSchemaRaw, Either, Response},
        schema::Apiv2Schema,
    },
};
use securecrud_service::FeedItem;

/// What an `EventSource` waits before it reconnects after the stream ends (milliseconds): a subscriber
/// that lost the connection is back within about a second, with its `Last-Event-ID`.
const RECONNECT_MS: u32 = 1_000;

/// The feed's stream of events, as an answer.
pub struct EventStream(LocalBoxStream<'static, FeedItem>);

impl EventStream {
    pub fn new(items: impl Stream<Item = FeedItem> + 'static) -> Self {
        Self(items.boxed_local())
    }
}

impl Responder for EventStream {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        let first = futures_util::stream::once(async { format!("retry: {RECONNECT_MS}\n\n") });
        let body = first
            .chain(self.0.map(|item| event_text(&item)))
            .map(|text| Ok::<_, std::convert::Infallible>(Bytes::from(text)));
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            // nginx would otherwise buffer the stream (see deploy/nginx).
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body)
    }
}

/// One item as Server-Sent Events text (ending with the blank line that ends an event).
pub(crate) fn event_text(item: &FeedItem) -> String {
    match item {
        FeedItem::Revoked {
            cursor,
            session_id,
            until,
        } => {
            let mut text = String::with_capacity(112);
            let _ = write!(
                text,
                "event: revoked\nid: {cursor}\ndata: {{\"sid\":\"{session_id}\",\"until\":{until}}}\n\n"
            );
            text
        }
        FeedItem::KeepAlive => ": keep-alive\n\n".to_owned(),
    }
}

impl Apiv2Schema for EventStream {}

impl OperationModifier for EventStream {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some(
                    "A stream that stays open (`text/event-stream`): for each ended session an event \
                     `revoked` whose `id` is its cursor and whose `data` is `{\"sid\": \"<session id>\", \
                     \"until\": <Unix time after which none of its access tokens verifies anyway>}`, and a \
                     comment line at least every 15 s"
                        .into(),
                ),
                schema: Some(DefaultSchemaRaw {
                    data_type: Some(DataType::String),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use securecrud_domain::SessionId;

    use super::*;

    #[test]
    fn an_event_is_sse_text_with_its_cursor_and_json_data() {
        let session_id = SessionId::new();
        let text = event_text(&FeedItem::Revoked {
            cursor: 42,
            session_id,
            until: 1_800_000_905,
        });
        assert_eq!(
            text,
            format!(
                "event: revoked\nid: 42\ndata: {{\"sid\":\"{session_id}\",\"until\":1800000905}}\n\n"
            )
        );
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["sid"], session_id.to_string());
        assert_eq!(event_text(&FeedItem::KeepAlive), ": keep-alive\n\n");
    }
}

//! Logging set-up: `env_logger` filtered by `RUST_LOG` (default `info`), as text or one JSON object a line.
//!
//! Structured fields (`log` key-values, e.g. the access log's method, path, status, request id) become JSON
//! fields, or `key=value` pairs in text.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use securecrud_service::LogFormat;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Json => builder.format(|buf, record| {
            let mut fields = serde_json::Map::new();
            fields.insert("ts".into(), now().into());
            fields.insert("level".into(), record.level().as_str().into());
            fields.insert("target".into(), record.target().into());
            fields.insert("msg".into(), record.args().to_string().into());
            let _ = record.key_values().visit(&mut JsonFields(&mut fields));
            writeln!(buf, "{}", serde_json::Value::Object(fields))
        }),
        LogFormat::Text => builder.format(|buf, record| {
            let mut pairs = String::new();
            let _ = record.key_values().visit(&mut TextFields(&mut pairs));
            writeln!(
                buf,
                "{} {:5} {}: {}{pairs}",
                now(),
                record.level(),
                record.target(),
                record.args()
            )
        }),
    };
    builder.init();
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(f) = value.to_f64() {
            serde_json::Number::from_f64((f * 1000.0).round() / 1000.0)
                .map_or(serde_json::Value::Null, Into::into)
        } else {
            value.to_string().into()
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

//! In-memory rows, ID allocation, timestamps and Go-compatible JSON rendering.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::types::{Kind, TypeDef};

/// First ID handed out: the magnitude of CockroachDB `unique_rowid()` values (about 9.2e17,
/// far above 2^53), so clients that route IDs through f64 break here as they would in
/// production.
pub const FIRST_ID: u64 = 917_190_976_565_575_681;

/// One stored object. Field values are kept as JSON values keyed by JSON name; `ID`,
/// `CreatedAt` and `UpdatedAt` are fields like any other.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub fields: HashMap<&'static str, Value>,
    /// gorm soft delete.
    pub deleted: bool,
}

impl Row {
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.fields.get(k).filter(|v| !v.is_null())
    }

    pub fn id(&self) -> u64 {
        self.get("ID").and_then(Value::as_u64).unwrap_or(0)
    }

    pub fn is_set(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
}

#[derive(Debug)]
pub struct Store {
    next_id: u64,
    pub tables: HashMap<&'static str, BTreeMap<u64, Row>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            next_id: FIRST_ID,
            tables: HashMap::new(),
        }
    }
}

impl Store {
    /// Increasing, not consecutive (like `unique_rowid()`), always above 2^53.
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1 + u64::from(rand::random::<u8>());
        id
    }

    pub fn table(&mut self, path: &'static str) -> &mut BTreeMap<u64, Row> {
        self.tables.entry(path).or_default()
    }

    pub fn live(&self, path: &str) -> impl Iterator<Item = &Row> {
        self.tables
            .get(path)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|r| !r.deleted)
    }

    pub fn get_live(&self, path: &str, id: u64) -> Option<&Row> {
        self.tables
            .get(path)
            .and_then(|t| t.get(&id))
            .filter(|r| !r.deleted)
    }
}

/// Now in UTC truncated to microseconds, as the API's gorm `NowFunc` and the database store it.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// Go's `time.Time.MarshalJSON` (RFC 3339 with nanoseconds, trailing zeros trimmed).
pub fn go_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let ns = t.nanosecond();
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

pub fn now_value() -> Value {
    Value::String(go_time(now()))
}

/// Parse a client time and normalise it as the database returns it (UTC, microseconds).
pub fn normalise_time(s: &str) -> Option<String> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let t = t.replace_nanosecond(t.nanosecond() / 1000 * 1000).ok()?;
    Some(go_time(t))
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Render an object in Go struct order, omitting absent and null fields (`omitempty`
/// pointers). `extra` holds pre-rendered values of transient fields (association arrays sent
/// with a POST, children created with it) which are never stored on the row.
pub fn render(td: &TypeDef, row: &Row, extra: &HashMap<&'static str, String>) -> String {
    let mut out = String::from("{");
    let mut first = true;
    for f in &td.fields {
        let rendered = match f.kind {
            Kind::Array | Kind::Children(..) => extra.get(f.json).cloned(),
            _ => row
                .get(f.json)
                .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
        };
        if let Some(r) = rendered {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(f.json);
            out.push_str("\":");
            out.push_str(&r);
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_trims_zeros() {
        let t = OffsetDateTime::parse("2023-11-09T12:18:36.020400Z", &Rfc3339).expect("t");
        assert_eq!(go_time(t), "2023-11-09T12:18:36.0204Z");
        let t = OffsetDateTime::parse("2023-11-09T12:18:36Z", &Rfc3339).expect("t");
        assert_eq!(go_time(t), "2023-11-09T12:18:36Z");
        assert_eq!(
            normalise_time("2023-11-09T13:18:36.123456789+01:00").as_deref(),
            Some("2023-11-09T12:18:36.123456Z")
        );
    }

    #[test]
    fn ids_are_above_2_53_and_increasing() {
        let mut s = Store::default();
        let a = s.alloc_id();
        let b = s.alloc_id();
        assert!(a > (1u64 << 53) && b > a);
    }
}

//! The trajectory's unit of record: [`Span`], one step of a job (flow, action, agent, LLM call,
//! tool call), and [`Timestamp`], the wall-clock instant it started and finished.
//!
//! Field names follow the reference (Go field names, `Type`, `OutputThoughtsTokens`) so that
//! trajectories can be compared with, and loaded by, tools written for the reference. Zero or
//! absent fields are left out of the JSON, as the reference's `omitzero` does.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What a span records. Stored as the reference's strings; consumers match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SpanKind {
    #[default]
    Flow,
    Action,
    Agent,
    /// The umbrella span of N independent candidate runs of one agent.
    AgentCandidates,
    Llm,
    Tool,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Flow => "flow",
            SpanKind::Action => "action",
            SpanKind::Agent => "agent",
            SpanKind::AgentCandidates => "agent-candidates",
            SpanKind::Llm => "llm",
            SpanKind::Tool => "tool",
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One span event. The same `seq` is emitted twice: at start (no `finished`) and at finish;
/// consumers upsert by `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Span {
    /// 0-based order of span starts within one job.
    pub seq: u64,
    /// Depth: flow 0, actions and agents 1, their LLM and tool calls 2, and so on.
    pub nesting: u32,
    #[serde(rename = "Type")]
    pub kind: SpanKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    pub started: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        rename = "OutputThoughtsTokens"
    )]
    pub thoughts_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_tokens: u64,
    /// The LLM reply (or tool result) was replayed from a cache rather than computed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cache_hit: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Span {
    /// A span that [`crate::Trajectory::start`] will number and stamp.
    pub fn new(kind: SpanKind, nesting: u32, name: impl Into<String>) -> Self {
        Span {
            kind,
            nesting,
            name: name.into(),
            ..Span::default()
        }
    }

    /// Milliseconds between start and finish; `None` while unfinished.
    pub fn duration_ms(&self) -> Option<u64> {
        self.finished.map(|f| f.0.saturating_sub(self.started.0))
    }
}

/// Milliseconds since the Unix epoch, serialised as RFC 3339 UTC (`2026-01-16T01:23:45.678Z`)
/// so trajectories are readable and sortable without a date library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let millis = self.0 % 1000;
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (also `+00:00`), the forms this crate and the
    /// reference write. Other offsets are rejected rather than silently misread.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return None;
        }
        let mut rest = &s[19..];
        let mut millis = 0u64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let first3: String = frac[..digits]
                .chars()
                .chain("000".chars())
                .take(3)
                .collect();
            millis = first3.parse().ok()?;
            rest = &frac[digits..];
        }
        if !matches!(rest, "Z" | "z" | "+00:00") {
            return None;
        }
        let days = days_from_civil(i64::try_from(y).ok()?, mo, d);
        let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
        Some(Timestamp(secs * 1000 + millis))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s:?}")))
    }
}

// Howard Hinnant's civil calendar algorithms (public domain), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u64, d as u64)
}

fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let (m, d) = (m as i64, d as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        for ms in [0u64, 951_782_400_123, 1_768_526_580_000, 4_102_444_799_999] {
            let t = Timestamp(ms);
            assert_eq!(
                Timestamp::parse_rfc3339(&t.to_rfc3339()),
                Some(t),
                "{}",
                t.to_rfc3339()
            );
        }
        assert_eq!(
            Timestamp(1_768_526_580_000).to_rfc3339(),
            "2026-01-16T01:23:00.000Z"
        );
    }

    #[test]
    fn rfc3339_parser_rejects_garbage_and_foreign_offsets() {
        assert_eq!(Timestamp::parse_rfc3339("2026-01-16T01:23:00+02:00"), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339("2026-13-16T01:23:00Z"), None);
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-16T01:23:00.5Z"),
            Some(Timestamp(1_768_526_580_500))
        );
    }

    #[test]
    fn span_json_uses_reference_field_names_and_omits_zeroes() {
        let mut span = Span::new(SpanKind::Llm, 2, "expert");
        span.thoughts_tokens = 7;
        let json = serde_json::to_value(&span).unwrap();
        assert_eq!(json["Type"], "llm");
        assert_eq!(json["OutputThoughtsTokens"], 7);
        assert!(json.get("InputTokens").is_none());
        assert!(json.get("Finished").is_none());
        let back: Span = serde_json::from_value(json).unwrap();
        assert_eq!(back, span);
    }
}

//! The few HTML helpers the pages share. Every dynamic string goes through [`esc`]; pages are
//! assembled with `write!` into a `String`, so there is no template language to forget it in.

use std::fmt::Write;

/// Escapes `text` for HTML element content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `text` for a query-string value.
pub fn url_param(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn opt_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_default()
}

/// The page frame. `title` is escaped here; `body` must already be safe HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · racejudge</title><style>{STYLE}</style></head><body>\
<nav><a href=\"/\">Jobs</a> · <a href=\"/submit\">Submit</a> · <a href=\"/stats\">Stats</a> · \
<a href=\"/workers\">Workers</a> · <a href=\"/api/v1/openapi.json\">API</a></nav>\
<main>{body}</main></body></html>\n",
        esc(title)
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}\
pre{background:#f6f6f6;padding:6px;overflow:auto;white-space:pre-wrap}\
details{margin-left:1em}summary{cursor:pointer;font-family:monospace}\
.err{color:#a00}nav{margin-bottom:1em}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script>\"&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
        );
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_709_210_096_000), "2024-02-29 12:34:56");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(url_param("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}

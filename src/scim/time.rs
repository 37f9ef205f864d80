//! Timestamps as SCIM carries them (RFC 7643 §2.3.5, xsd:dateTime). scimd writes UTC with
//! millisecond precision so stored text sorts in time order; it reads any RFC 3339 value.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Formats an instant as `2026-11-22T10:04:05.123Z`.
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Now, in the stored format.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Parses an RFC 3339 date-time.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc() {
        let t = parse("2026-01-02T03:04:05.6+01:00").unwrap();
        assert_eq!(format(t), "2026-01-02T02:04:05.600Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(parse("2026-01-02").is_none());
        assert!(parse("yesterday").is_none());
    }

    #[test]
    fn now_round_trips() {
        let n = now();
        assert_eq!(format(parse(&n).unwrap()), n);
    }
}

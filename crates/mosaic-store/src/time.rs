//! Timestamps as the two backends store them.
//!
//! PostgreSQL has `timestamptz` (microsecond precision). SQLite has no time type: the local tier stores UTC
//! RFC 3339 text with exactly six fractional digits, so that text order is time order and `WHERE expires_at
//! <= $now` means what it says. sqlx's own SQLite encoding of `OffsetDateTime` prints a variable number of
//! fractional digits (`…:05Z` sorts after `…:05.5Z`), hence this small wrapper for binding; reading back uses
//! sqlx's decoders, which parse this text on SQLite and `timestamptz` on PostgreSQL.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};
use time::OffsetDateTime;
use time::macros::format_description;

/// A timestamp bound as a query parameter. Always UTC, truncated to whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DbTime(OffsetDateTime);

impl DbTime {
    pub(crate) fn new(at: OffsetDateTime) -> Self {
        Self(truncate_to_micros(at))
    }

    pub(crate) fn get(self) -> OffsetDateTime {
        self.0
    }

    /// The text the local tier stores: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    fn sqlite_text(self) -> Result<String, time::error::Format> {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        self.0.to_offset(time::UtcOffset::UTC).format(&format)
    }
}

/// The current time, UTC, in whole microseconds (what PostgreSQL keeps, so values round-trip exactly).
pub(crate) fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

pub(crate) fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let micros = at.microsecond();
    // `replace_microsecond` only fails for values ≥ 1 000 000, which `microsecond()` never returns.
    at.replace_microsecond(micros).unwrap_or(at)
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let text = self.sqlite_text()?;
        <String as Encode<'_, Sqlite>>::encode(text, buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::DbTime;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_fixed_width_and_sorts_like_time() {
        let whole = DbTime::new(datetime!(2026-01-02 03:04:05 UTC));
        let half = DbTime::new(datetime!(2026-01-02 03:04:05.5 UTC));
        let shifted = DbTime::new(datetime!(2026-01-02 05:04:05.25 +02:00));
        assert_eq!(whole.sqlite_text().unwrap(), "2026-01-02T03:04:05.000000Z");
        assert_eq!(half.sqlite_text().unwrap(), "2026-01-02T03:04:05.500000Z");
        assert_eq!(
            shifted.sqlite_text().unwrap(),
            "2026-01-02T03:04:05.250000Z"
        );
        assert!(whole.sqlite_text().unwrap() < shifted.sqlite_text().unwrap());
        assert!(shifted.sqlite_text().unwrap() < half.sqlite_text().unwrap());
    }

    #[test]
    fn truncates_to_microseconds() {
        let t = DbTime::new(datetime!(2026-01-02 03:04:05.123456789 UTC));
        assert_eq!(t.get().nanosecond(), 123_456_000);
    }
}

//! Time, one unit everywhere: stores keep instants as microseconds since the Unix epoch
//! (`i64`), and durations as milliseconds; protobuf conversions are written only here.

use prost_types::{Duration as PbDuration, Timestamp};

use crate::{ApiError, ApiResult};

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// `Some(timestamp)` for a set instant; `None` for 0, the stores' "never".
pub fn timestamp_opt(us: i64) -> Option<Timestamp> {
    (us != 0).then(|| timestamp(us))
}

/// A protobuf timestamp in microseconds since the epoch, or `None` outside the protobuf
/// contract's range (years 1 to 9999) — never an overflow.
pub fn micros(ts: &Timestamp) -> Option<i64> {
    if !(-62_135_596_800..=253_402_300_799).contains(&ts.seconds)
        || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return None;
    }
    Some(ts.seconds * 1_000_000 + i64::from(ts.nanos / 1_000))
}

/// [`micros`] of a request field: INVALID_ARGUMENT naming `field` when out of range.
pub fn parse_timestamp(field: &str, ts: &Timestamp) -> ApiResult<i64> {
    micros(ts).ok_or_else(|| ApiError::invalid(field, "is not a valid timestamp"))
}

/// [`parse_timestamp`] for an optional field: unset stays `None`.
pub fn parse_timestamp_opt(field: &str, ts: Option<&Timestamp>) -> ApiResult<Option<i64>> {
    ts.map(|t| parse_timestamp(field, t)).transpose()
}

/// A protobuf duration in milliseconds; `None` when negative, malformed or overflowing.
pub fn duration_ms(d: &PbDuration) -> Option<i64> {
    if !(-999_999_999..=999_999_999).contains(&d.nanos) {
        return None;
    }
    let ms = d
        .seconds
        .checked_mul(1000)?
        .checked_add(i64::from(d.nanos / 1_000_000))?;
    (ms >= 0).then_some(ms)
}

/// Milliseconds as a protobuf duration.
pub fn duration(ms: i64) -> PbDuration {
    PbDuration {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_refuse_overflow() {
        for us in [0, 1, 1_700_000_000_123_456, -1, -1_500_000] {
            assert_eq!(micros(&timestamp(us)), Some(us), "{us}");
        }
        assert_eq!(timestamp_opt(0), None);
        let huge = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(micros(&huge), None);
        assert!(parse_timestamp("start_time", &huge).is_err());
        let bad_nanos = Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(micros(&bad_nanos), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(&duration(1_234)), Some(1_234));
        assert_eq!(
            duration_ms(&PbDuration {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
        assert_eq!(
            duration_ms(&PbDuration {
                seconds: -1,
                nanos: 0
            }),
            None
        );
    }
}

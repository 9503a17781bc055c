//! The Smithy `timestamp` type: seconds since the Unix epoch as a JSON number.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, as sent on the wire: seconds since the Unix epoch (fraction allowed).
///
/// Decoding accepts any JSON number form (`1704067200`, `1704067200.5`, `1.7E9`).
/// Encoding always writes a JSON number with a fractional part (`1704067200.0`),
/// because Greengrass nucleus lite refuses an integer `timestamp` in
/// `UpdateConfiguration`. (This holds for every value below 10^16 seconds; larger
/// magnitudes are written in exponent form by `serde_json`.)
///
/// The value is always finite: constructors map NaN and infinities to `0.0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Timestamp(f64);

impl Timestamp {
    /// The Unix epoch (`0.0`).
    pub const EPOCH: Timestamp = Timestamp(0.0);

    /// From seconds since the Unix epoch; NaN and infinities become `0.0`.
    pub fn from_secs_f64(secs: f64) -> Self {
        if secs.is_finite() {
            Timestamp(secs)
        } else {
            Timestamp(0.0)
        }
    }

    /// From whole milliseconds since the Unix epoch.
    pub fn from_millis(millis: i64) -> Self {
        // i64 -> f64 is lossy only beyond 2^53 ms (about 285,000 years).
        Timestamp(millis as f64 / 1000.0)
    }

    /// The current time of the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Seconds since the Unix epoch.
    pub fn as_secs_f64(&self) -> f64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded toward zero (saturating).
    pub fn as_millis(&self) -> i64 {
        // Float-to-int `as` casts saturate in Rust; the value is finite.
        (self.0 * 1000.0) as i64
    }

    /// The time as a [`SystemTime`], or `None` if the platform cannot represent it.
    pub fn checked_to_system_time(&self) -> Option<SystemTime> {
        let magnitude = Duration::try_from_secs_f64(self.0.abs()).ok()?;
        if self.0 >= 0.0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    /// The time as a [`SystemTime`]; a value the platform cannot represent yields
    /// [`UNIX_EPOCH`] (use [`Self::checked_to_system_time`] to detect that).
    pub fn to_system_time(&self) -> SystemTime {
        self.checked_to_system_time().unwrap_or(UNIX_EPOCH)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(after.as_secs_f64()),
            Err(before) => Timestamp(-before.duration().as_secs_f64()),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes finite f64 values with a fraction (`1704067200.0`).
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // f64 accepts JSON integers, decimals and exponent forms alike.
        f64::deserialize(deserializer).map(Timestamp::from_secs_f64)
    }
}

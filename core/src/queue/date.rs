//! Calendar dates from [`Time`] values, for `Date:` headers, `Received:` lines and delivery
//! status notifications (RFC 5322 section 3.3), in UTC.

use crate::time::Time;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC calendar date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// The year.
    pub year: i64,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
    /// 0 = Thursday (the epoch's weekday) … 6 = Wednesday.
    weekday: u8,
}

impl DateTime {
    /// The calendar date of `t`.
    #[must_use]
    pub fn from_time(t: Time) -> DateTime {
        let secs = t.as_secs();
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            weekday: (days % 7) as u8,
        }
    }

    /// RFC 5322 form: `Sun, 22 Nov 2026 02:17:45 +0000`.
    #[must_use]
    pub fn rfc5322(&self) -> String {
        format!(
            "{}, {} {} {} {:02}:{:02}:{:02} +0000",
            DAYS[usize::from(self.weekday)],
            self.day,
            MONTHS[usize::from(self.month - 1)],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 5322 date of `t`.
#[must_use]
pub fn rfc5322(t: Time) -> String {
    DateTime::from_time(t).rfc5322()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc5322(Time::ZERO), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322(Time::from_secs(1_795_310_452)),
            "Sun, 22 Nov 2026 01:20:52 +0000"
        );
        assert_eq!(
            rfc5322(Time::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322(Time::from_secs(1_700_000_000)),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
    }
}

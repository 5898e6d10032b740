//! When a schedule next fires: the five-field cron expressions (and `@daily`-style
//! names) that `spec.backup.schedule` accepts, evaluated in UTC as the CronJob is. For
//! `status.backup.nextScheduled` and for `BackupHealthy` ("older than twice the
//! schedule"), not for running anything: the CronJob runs the schedule.

use k8s_openapi::jiff::{Timestamp, ToSpan, civil::DateTime, tz::TimeZone};

/// A parsed schedule: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Both day fields restricted: a day matches if either does (cron's rule).
    either_day: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(text: &str, names: &[&str], offset: u32) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return Some(n);
    }
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| u32::try_from(i).ok())
        .map(|i| i + offset)
}

/// The values a field allows, as a bit set over `min..=max`; `None` when malformed.
fn field(text: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Option<u64> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a, names, offset)?, value(b, names, offset)?),
                None => {
                    let v = value(range, names, offset)?;
                    (v, if part.contains('/') { max } else { v })
                }
            },
        };
        if from < min || to > max || from > to {
            return None;
        }
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v += step;
        }
    }
    Some(set)
}

impl Schedule {
    /// Parses a schedule; `None` when it is not one the CRD accepts.
    pub fn parse(text: &str) -> Option<Self> {
        let text = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return None;
        };
        let mut weekdays = field(weekday, 0, 7, &WEEKDAYS, 0)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let restricted = |f: &str| !f.starts_with('*') && f != "?";
        Some(Self {
            minutes: field(minute, 0, 59, &[], 0)?,
            hours: u32::try_from(field(hour, 0, 23, &[], 0)?).ok()?,
            days: u32::try_from(field(day, 1, 31, &[], 0)?).ok()?,
            months: u16::try_from(field(month, 1, 12, &MONTHS, 1)?).ok()?,
            weekdays: u8::try_from(weekdays & 0x7f).ok()?,
            either_day: restricted(day) && restricted(weekday),
        })
    }

    fn day_matches(&self, at: DateTime) -> bool {
        let day = self.days & (1 << at.day()) != 0;
        let weekday = self.weekdays & (1 << at.weekday().to_sunday_zero_offset()) != 0;
        if self.either_day {
            day || weekday
        } else {
            day && weekday
        }
    }

    /// The first time after `after` (to the minute) the schedule fires, within five
    /// years (a schedule such as `0 0 30 2 *` never does).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let utc = TimeZone::UTC;
        let start = after.to_zoned(utc.clone()).datetime();
        let mut at = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = start.checked_add(5.years()).ok()?;
        while at < limit {
            if self.months & (1 << at.month()) == 0 || !self.day_matches(at) {
                // The next day, at midnight.
                at = at.date().tomorrow().ok()?.to_datetime(Default::default());
                continue;
            }
            if self.hours & (1 << at.hour()) == 0 {
                at = at
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << at.minute()) == 0 {
                at = at.checked_add(1.minute()).ok()?;
                continue;
            }
            return at.to_zoned(utc).ok().map(|z| z.timestamp());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn schedules_fire_when_a_cronjob_would() {
        assert_eq!(
            next("0 3 * * *", "2026-12-06T15:00:00Z"),
            "2026-12-07T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * *", "2026-12-06T02:59:59Z"),
            "2026-12-06T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * *", "2026-12-06T03:00:00Z"),
            "2026-12-07T03:00:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-12-06T15:07:00Z"),
            "2026-12-06T15:15:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-12-06T23:30:00Z"),
            "2026-12-07T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-12-06T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        // 2026-12-06 is a Sunday; MON-FRI skips to Monday.
        assert_eq!(
            next("30 8 * * MON-FRI", "2026-12-06T09:00:00Z"),
            "2026-12-07T08:30:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-07T00:00:00Z"),
            "2026-12-13T00:00:00Z"
        );
        // Day of month or day of week, when both are given.
        assert_eq!(
            next("0 0 1 * fri", "2026-12-06T00:00:00Z"),
            "2026-12-11T00:00:00Z"
        );
        assert_eq!(
            next("0 12 29 2 *", "2026-03-01T00:00:00Z"),
            "2028-02-29T12:00:00Z"
        );
        assert!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn what_the_crd_refuses_does_not_parse() {
        for bad in [
            "61 * * * *",
            "* 24 * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "* * * *",
            "0 0 * * xyz",
            "*/0 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_none(), "{bad}");
        }
    }
}

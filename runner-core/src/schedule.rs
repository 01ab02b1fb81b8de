//! Pipeline schedules: OpenMetadata's `airflowConfig.scheduleInterval` (5-field cron or an Airflow
//! preset) in `airflowConfig.pipelineTimezone`.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Why a schedule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "scheduleInterval `{expr}` is not a valid 5-field cron expression or Airflow preset (@hourly, @daily, @weekly, @monthly, @quarterly, @yearly): {reason}"
    )]
    InvalidCron { expr: String, reason: String },
    #[error(
        "pipelineTimezone `{0}` is not an IANA time zone name (for example `UTC` or `Europe/Madrid`)"
    )]
    InvalidTimezone(String),
}

/// A validated recurring schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression after converting presets (5 fields).
    pub cron: String,
    pub timezone: Tz,
    parsed: Cron,
}

impl Schedule {
    /// `Ok(None)` when the pipeline has no recurring schedule (empty, or `@once`).
    pub fn parse(
        expr: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Option<Schedule>, ScheduleError> {
        let Some(expr) = expr.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        // One grammar for both executors: the Argo builder's preset table and field checks, so a
        // schedule is accepted, refused and read alike whichever executor runs it.
        let cron = match runner_argo::build::schedule::to_cron(Some(expr)) {
            Ok(Some(cron)) => cron,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(ScheduleError::InvalidCron {
                    expr: expr.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let tz_name = timezone
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("UTC");
        let timezone = Tz::from_str(tz_name)
            .map_err(|_| ScheduleError::InvalidTimezone(tz_name.to_owned()))?;
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&cron)
            .map_err(|e| ScheduleError::InvalidCron {
                expr: expr.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Some(Schedule {
            cron,
            timezone,
            parsed,
        }))
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.parsed
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn presets_and_plain_cron() {
        let s = Schedule::parse(Some("@daily"), None).unwrap().unwrap();
        assert_eq!(s.cron, "0 0 * * *");
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap())
        );
        let s = Schedule::parse(Some("*/15 * * * *"), Some("UTC"))
            .unwrap()
            .unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 10, 15, 0).unwrap())
        );
        assert!(Schedule::parse(Some("@once"), None).unwrap().is_none());
        assert!(Schedule::parse(None, None).unwrap().is_none());
        assert!(Schedule::parse(Some("  "), None).unwrap().is_none());
    }

    #[test]
    fn timezone_shifts_firing() {
        let s = Schedule::parse(Some("0 2 * * *"), Some("Europe/Madrid"))
            .unwrap()
            .unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
        // 02:00 in Madrid (UTC+1 in winter) is 01:00 UTC.
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap())
        );
    }

    #[test]
    fn refuses_seconds_and_garbage() {
        let err = Schedule::parse(Some("* * * * * *"), None).unwrap_err();
        assert!(matches!(err, ScheduleError::InvalidCron { .. }), "{err}");
        assert!(Schedule::parse(Some("every day"), None).is_err());
        // Presets are case-sensitive, as in Airflow and in the Argo builder (found by fuzzing).
        assert!(Schedule::parse(Some("@dAily"), None).is_err());
        assert!(matches!(
            Schedule::parse(Some("@daily"), Some("Mars/Olympus")),
            Err(ScheduleError::InvalidTimezone(_))
        ));
    }
}

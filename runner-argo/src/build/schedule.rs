//! Airflow `scheduleInterval` -> Argo CronWorkflow `schedules` entry, and timezones.

use super::BuildError;

/// Convert an Airflow schedule (preset or 5-field cron) to a cron expression Argo accepts.
/// `Ok(None)` for "no schedule" (`None`, empty, `@once`, `null`).
pub fn to_cron(schedule: Option<&str>) -> Result<Option<String>, BuildError> {
    let Some(s) = schedule.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let preset = match s {
        "@once" | "null" | "None" => return Ok(None),
        "@hourly" => Some("0 * * * *"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@monthly" => Some("0 0 1 * *"),
        "@quarterly" => Some("0 0 1 */3 *"),
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        _ => None,
    };
    if let Some(p) = preset {
        return Ok(Some(p.to_owned()));
    }
    if s.starts_with('@') {
        return Err(BuildError::Invalid {
            field: "airflowConfig.scheduleInterval".into(),
            reason: format!(
                "{s:?} is not a supported preset (@hourly, @daily, @midnight, @weekly, @monthly, @quarterly, \
                 @yearly, @annually, @once) nor a 5-field cron expression"
            ),
        });
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    let ok_chars = |f: &str| {
        f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?'))
    };
    if fields.len() != 5 || !fields.iter().all(|f| ok_chars(f)) {
        return Err(BuildError::Invalid {
            field: "airflowConfig.scheduleInterval".into(),
            reason: format!(
                "{s:?} is not a 5-field cron expression (minute hour day-of-month month day-of-week)"
            ),
        });
    }
    Ok(Some(fields.join(" ")))
}

/// Validate an IANA timezone name (`pipelineTimezone`); `None`/empty -> `None` (UTC).
pub fn timezone(tz: Option<&str>) -> Result<Option<String>, BuildError> {
    let Some(tz) = tz.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    tz.parse::<chrono_tz::Tz>()
        .map_err(|_| BuildError::Invalid {
            field: "airflowConfig.pipelineTimezone".into(),
            reason: format!(
                "{tz:?} is not an IANA timezone name (e.g. UTC, Europe/Madrid, America/New_York)"
            ),
        })?;
    Ok(Some(tz.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_cron() {
        assert_eq!(
            to_cron(Some("@daily")).unwrap().as_deref(),
            Some("0 0 * * *")
        );
        assert_eq!(
            to_cron(Some("@hourly")).unwrap().as_deref(),
            Some("0 * * * *")
        );
        assert_eq!(
            to_cron(Some("@weekly")).unwrap().as_deref(),
            Some("0 0 * * 0")
        );
        assert_eq!(
            to_cron(Some("@monthly")).unwrap().as_deref(),
            Some("0 0 1 * *")
        );
        assert_eq!(
            to_cron(Some("@yearly")).unwrap().as_deref(),
            Some("0 0 1 1 *")
        );
        assert_eq!(
            to_cron(Some(" */5  2 * * 1-5 ")).unwrap().as_deref(),
            Some("*/5 2 * * 1-5")
        );
        assert_eq!(to_cron(Some("@once")).unwrap(), None);
        assert_eq!(to_cron(None).unwrap(), None);
        assert!(
            to_cron(Some("@fortnightly"))
                .unwrap_err()
                .to_string()
                .contains("scheduleInterval")
        );
        assert!(to_cron(Some("* * *")).is_err());
        assert!(to_cron(Some("0 0 * * * ; rm -rf")).is_err());
    }

    #[test]
    fn timezones() {
        assert_eq!(
            timezone(Some("Europe/Madrid")).unwrap().as_deref(),
            Some("Europe/Madrid")
        );
        assert_eq!(timezone(Some("")).unwrap(), None);
        assert!(
            timezone(Some("Mars/Olympus"))
                .unwrap_err()
                .to_string()
                .contains("pipelineTimezone")
        );
    }
}

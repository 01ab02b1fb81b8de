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
    if fields.len() == 6 || fields.len() == 7 {
        return Err(BuildError::Invalid {
            field: "airflowConfig.scheduleInterval".into(),
            reason: format!(
                "{s:?} has {} fields: a seconds (or year) field is not accepted; a schedule fires \
                 at most once a minute (5 fields: minute hour day-of-month month day-of-week)",
                fields.len()
            ),
        });
    }
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
    for (f, spec) in fields.iter().zip(&FIELDS) {
        check_field(f, spec).map_err(|why| BuildError::Invalid {
            field: "airflowConfig.scheduleInterval".into(),
            reason: format!("{s:?}: {} field {f:?}: {why}", spec.name),
        })?;
    }
    Ok(Some(fields.join(" ")))
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    question_mark: bool,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        question_mark: false,
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        question_mark: false,
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        question_mark: true,
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
        question_mark: false,
    },
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 6,
        names: DAYS,
        question_mark: true,
    },
];

/// One value of a field: a number in range, or a month / day name.
fn field_value(v: &str, spec: &FieldSpec) -> Result<u32, String> {
    let first = if spec.name == "month" { 1 } else { 0 };
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
        return Ok(i as u32 + first);
    }
    let n: u32 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if n < spec.min || n > spec.max {
        return Err(format!("{n} is outside {}-{}", spec.min, spec.max));
    }
    Ok(n)
}

/// Checks one cron field: a comma list of `*`, `?` (day fields), `N`, `N-M`, each with an
/// optional `/STEP` (STEP >= 1).
fn check_field(f: &str, spec: &FieldSpec) -> Result<(), String> {
    for item in f.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (item, None),
        };
        if let Some(st) = step {
            let n: u32 = st
                .parse()
                .map_err(|_| format!("step {st:?} is not a number"))?;
            if n == 0 || n > spec.max.max(1) {
                return Err(format!("step {n} is outside 1-{}", spec.max));
            }
        }
        match range {
            // `*` and `?` are the whole field: croner (the local executor) refuses them inside
            // a list.
            "*" | "?" if f.contains(',') => {
                return Err(format!("`{range}` cannot be part of a list"));
            }
            "*" => {}
            "?" if spec.question_mark && step.is_none() => {}
            "" => return Err("empty list item".into()),
            r => match r.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (field_value(a, spec)?, field_value(b, spec)?);
                    if a > b {
                        return Err(format!("range {a}-{b} is reversed"));
                    }
                }
                None => {
                    field_value(r, spec)?;
                }
            },
        }
    }
    Ok(())
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
        // found by fuzzing: croner refuses `*` in a list, so Argo must too
        assert!(to_cron(Some("0 2 *,* * *")).is_err());
        assert!(to_cron(Some("2 2 1 1 0,?")).is_err());
        for ok in [
            "0 0 * * SUN",
            "*/15 9-17 ? JAN-MAR MON-FRI",
            "0,30 * 1,15 * 6",
            "0 0 L * *",
        ] {
            let r = to_cron(Some(ok));
            assert_eq!(r.is_ok(), !ok.contains('L'), "{ok}: {r:?}");
        }
        for (bad, says) in [
            ("* * * * * *", "seconds"),
            ("*/1 * * * * *", "seconds"),
            ("61 * * * *", "minute field"),
            ("0 24 * * *", "hour field"),
            ("0 0 0 * *", "day-of-month"),
            ("0 0 * 13 *", "month field"),
            ("0 0 * * 7", "day-of-week"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "reversed"),
            ("? * * * *", "minute field"),
            ("1,,2 * * * *", "empty"),
        ] {
            let e = to_cron(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("scheduleInterval") && e.contains(says),
                "{bad}: {e}"
            );
        }
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

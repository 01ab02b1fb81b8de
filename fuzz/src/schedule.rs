//! Target `schedule`: arbitrary text as `airflowConfig.scheduleInterval` (and, after a `|`, as
//! `pipelineTimezone`), through both consumers: the Argo builder's `to_cron` (CronWorkflow
//! `schedules`) and the local executor's `Schedule::parse` (croner).
//!
//! - neither panics;
//! - a cron the Argo builder emits has exactly 5 fields separated by single spaces, and croner
//!   (minutes to weekdays, no seconds, no years) accepts it;
//! - a schedule the local executor accepts has 5 fields, and its next firing after a few fixed
//!   instants (around DST changes too) is strictly later;
//! - both accept and refuse the same expressions, and agree on the cron they run: a pipeline does
//!   not get a schedule on one executor that the other refuses or reads differently.

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use runner_argo::build::schedule::{timezone, to_cron};
use runner_core::schedule::Schedule;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, tz) = match text.split_once('|') {
        Some((e, t)) => (e, Some(t)),
        None => (text, None),
    };

    let argo = to_cron(Some(expr));
    if let Ok(Some(cron)) = &argo {
        let fields: Vec<&str> = cron.split(' ').collect();
        assert_eq!(
            fields.len(),
            5,
            "Argo cron {cron:?} of {expr:?} is not 5 fields"
        );
        assert!(
            fields
                .iter()
                .all(|f| !f.is_empty() && !f.contains(char::is_whitespace)),
            "Argo cron {cron:?} has an empty field or stray whitespace"
        );
        if let Err(e) = parse_5_fields(cron) {
            panic!("Argo cron {cron:?} of {expr:?} is refused by croner: {e}");
        }
    }

    let local = Schedule::parse(Some(expr), tz);
    if let Ok(Some(s)) = &local {
        assert_eq!(
            s.cron.split_whitespace().count(),
            5,
            "local cron {:?} of {expr:?} is not 5 fields",
            s.cron
        );
        for after in instants() {
            if let Some(next) = s.next_after(after) {
                assert!(
                    next > after,
                    "{:?}: next firing {next} is not after {after}",
                    s.cron
                );
            }
        }
    }

    // Agreement, when the time zone is one both take.
    if timezone(tz).is_err() {
        return;
    }
    match (&argo, &local) {
        (Ok(a), Ok(l)) => {
            let l = l
                .as_ref()
                .map(|s| s.cron.split_whitespace().collect::<Vec<_>>().join(" "));
            assert_eq!(
                a, &l,
                "Argo and the local executor read {expr:?} differently"
            );
        }
        (Err(_), Err(_)) => {}
        (a, l) => panic!(
            "{expr:?}: Argo gives {a:?}, the local executor {:?}",
            l.as_ref().map(|s| s.as_ref().map(|s| &s.cron))
        ),
    }
}

fn parse_5_fields(cron: &str) -> Result<(), String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn instants() -> [DateTime<Utc>; 3] {
    [
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        // Europe's spring and autumn changes.
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap(),
    ]
}

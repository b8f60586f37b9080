//! FinOps (SPEC §4.3): instance costs accrue from `hourly_cost_micros` between `ready_at` and
//! `terminated_at` (or now), in integer micro-EUR. Finops viewers see their scope: an org's
//! instances (owner/admin/manager), or in Personal the caller's own instances.

use crate::Ctx;
use crate::{Deps, ServiceError};
use inventiv_domain::{Action, Scope, accrued_cost_micros, authorize};
use inventiv_persistence::repo::instances::{self, CostRow};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime, Time};

pub use inventiv_domain::finops::{GroupBy, UsageGroupBy, UsageSideQuery};

/// The longest range one dashboard query may cover.
pub const MAX_RANGE: Duration = Duration::days(366);

/// `GET /finops/cost/current`.
#[derive(Debug, Clone)]
pub struct CurrentCost {
    /// Sum of the hourly prices of the running instances, micro-EUR per hour.
    pub hourly_micros: i64,
    pub instances: usize,
}

pub async fn current(deps: &Deps, ctx: &Ctx) -> Result<CurrentCost, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewFinops)?;
    let prices = instances::running_costs(&deps.db, actor.scope()).await?;
    Ok(CurrentCost {
        hourly_micros: prices.iter().sum(),
        instances: prices.len(),
    })
}

/// One group of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostGroup {
    /// The day (`2026-11-28`), instance id or model id.
    pub key: String,
    /// Human label (the model's name for instance and model groups).
    pub label: String,
    pub cost_micros: i64,
}

#[derive(Debug, Clone)]
pub struct CostReport {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub total_micros: i64,
    pub groups: Vec<CostGroup>,
}

/// Checks a `[from, to)` range: `from < to`, at most [`MAX_RANGE`]. The messages say what to
/// send instead.
pub fn check_range(from: OffsetDateTime, to: OffsetDateTime) -> Result<(), ServiceError> {
    if from >= to {
        return Err(ServiceError::invalid(
            "to",
            "must be after from; omit both for the current calendar month (UTC)",
        ));
    }
    if to - from > MAX_RANGE {
        return Err(ServiceError::invalid(
            "to",
            "the range may cover at most 366 days: send from and to at most 366 days apart \
             (e.g. from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z), or omit both for the \
             current calendar month (UTC)",
        ));
    }
    Ok(())
}

/// The current calendar month (UTC) of `now`: `[first day 00:00, first day of the next month
/// 00:00)` (the last representable instant after December 9999).
pub fn calendar_month(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let first = now.date().replace_day(1).unwrap_or(now.date());
    let next = match first.month() {
        time::Month::December => first
            .replace_year(first.year() + 1)
            .ok()
            .and_then(|d| d.replace_month(time::Month::January).ok()),
        month => first.replace_month(month.next()).ok(),
    };
    let start = first.with_time(Time::MIDNIGHT).assume_utc();
    let end = next.map_or(
        time::macros::datetime!(9999-12-31 23:59:59.999_999 UTC),
        |d| d.with_time(Time::MIDNIGHT).assume_utc(),
    );
    (start, end)
}

/// The `[from, to)` of a report (SPEC §4.3 v2): each bound not given is the current calendar
/// month's (UTC, from `now`); then checked by [`check_range`].
pub fn range(
    now: OffsetDateTime,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(OffsetDateTime, OffsetDateTime), ServiceError> {
    let (month_start, month_end) = calendar_month(now);
    let (from, to) = (from.unwrap_or(month_start), to.unwrap_or(month_end));
    check_range(from, to)?;
    Ok((from, to))
}

/// Splits `[start, end)` at UTC midnights.
fn days(start: OffsetDateTime, end: OffsetDateTime) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut pieces = Vec::new();
    // In UTC: the day boundaries are UTC midnights, and a cursor in another offset would
    // name the wrong day (a piece ending before it starts).
    let mut cursor = inventiv_persistence::to_utc(start);
    while cursor < end {
        // `next_day` is None after 9999-12-31: the range then ends at `end` (no overflow).
        let piece_end = cursor
            .date()
            .next_day()
            .map_or(end, |d| d.with_time(Time::MIDNIGHT).assume_utc().min(end));
        pieces.push((cursor, piece_end));
        cursor = piece_end;
    }
    pieces
}

fn cost(row: &CostRow, start: OffsetDateTime, end: OffsetDateTime) -> Result<i64, ServiceError> {
    accrued_cost_micros(row.hourly_cost_micros, (end - start).whole_seconds())
        .map_err(ServiceError::internal)
}

/// `GET /finops/dashboard/costs`: accrual at one-second resolution, each (instance, group)
/// piece rounded up to the micro-euro, the total being the sum of the pieces.
pub async fn costs(
    deps: &Deps,
    ctx: &Ctx,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    group_by: GroupBy,
) -> Result<CostReport, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewFinops)?;
    let (from, to) = range(ctx.now, from, to)?;
    let now = ctx.now;
    let rows = instances::cost_rows(&deps.db, actor.scope(), from, to).await?;
    let mut groups: BTreeMap<String, CostGroup> = BTreeMap::new();
    let mut add = |key: String, label: &str, micros: i64| {
        let group = groups.entry(key.clone()).or_insert_with(|| CostGroup {
            key,
            label: label.to_owned(),
            cost_micros: 0,
        });
        group.cost_micros += micros;
    };
    for row in &rows {
        let start = row.ready_at.max(from);
        let end = row.terminated_at.unwrap_or(now).min(to).min(now);
        if end <= start {
            continue;
        }
        match group_by {
            GroupBy::Day => {
                for (a, b) in days(start, end) {
                    add(
                        a.date().to_string(),
                        &a.date().to_string(),
                        cost(row, a, b)?,
                    );
                }
            }
            GroupBy::Instance => add(row.id.to_string(), &row.model_name, cost(row, start, end)?),
            GroupBy::Model => add(
                row.model_id.to_string(),
                &row.model_name,
                cost(row, start, end)?,
            ),
        }
    }
    let groups: Vec<CostGroup> = groups.into_values().collect();
    Ok(CostReport {
        from,
        to,
        total_micros: groups.iter().map(|g| g.cost_micros).sum(),
        groups,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn days_split_at_utc_midnight() {
        let pieces = days(
            datetime!(2026-01-01 22:00 UTC),
            datetime!(2026-01-03 01:00 UTC),
        );
        assert_eq!(
            pieces,
            vec![
                (
                    datetime!(2026-01-01 22:00 UTC),
                    datetime!(2026-01-02 00:00 UTC)
                ),
                (
                    datetime!(2026-01-02 00:00 UTC),
                    datetime!(2026-01-03 00:00 UTC)
                ),
                (
                    datetime!(2026-01-03 00:00 UTC),
                    datetime!(2026-01-03 01:00 UTC)
                ),
            ]
        );
        assert!(
            days(
                datetime!(2026-01-01 22:00 UTC),
                datetime!(2026-01-01 22:00 UTC)
            )
            .is_empty()
        );
    }

    #[test]
    fn days_split_in_utc_whatever_the_offset_and_stop_at_the_last_day() {
        let pieces = days(
            datetime!(2026-01-01 23:00 -05:00),
            datetime!(2026-01-02 06:00 UTC),
        );
        assert_eq!(
            pieces,
            vec![(
                datetime!(2026-01-02 04:00 UTC),
                datetime!(2026-01-02 06:00 UTC)
            )]
        );
        let last = datetime!(9999-12-31 23:59:59.999_999 UTC);
        assert_eq!(
            days(datetime!(9999-12-31 12:00 UTC), last),
            vec![(datetime!(9999-12-31 12:00 UTC), last)]
        );
    }

    #[test]
    fn ranges_are_checked() {
        assert!(
            check_range(
                datetime!(2026-01-02 0:00 UTC),
                datetime!(2026-01-01 0:00 UTC)
            )
            .is_err()
        );
        assert!(
            check_range(
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-01 0:00 UTC)
            )
            .is_err()
        );
        assert!(
            check_range(
                datetime!(2025-01-01 0:00 UTC),
                datetime!(2026-06-01 0:00 UTC)
            )
            .is_err()
        );
        assert!(
            check_range(
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-02 0:00 UTC)
            )
            .is_ok()
        );
    }

    #[test]
    fn the_default_range_is_the_current_calendar_month_utc() {
        use super::{calendar_month, range};
        assert_eq!(
            calendar_month(datetime!(2026-11-30 18:00 UTC)),
            (
                datetime!(2026-11-01 0:00 UTC),
                datetime!(2026-12-01 0:00 UTC)
            )
        );
        assert_eq!(
            calendar_month(datetime!(2026-12-31 23:59:59 UTC)),
            (
                datetime!(2026-12-01 0:00 UTC),
                datetime!(2027-01-01 0:00 UTC)
            )
        );
        // In UTC, whatever the offset `now` carries.
        assert_eq!(
            calendar_month(datetime!(2027-01-01 0:30 +02:00)),
            (
                datetime!(2026-12-01 0:00 UTC),
                datetime!(2027-01-01 0:00 UTC)
            )
        );
        assert_eq!(
            calendar_month(datetime!(9999-12-15 0:00 UTC)).1,
            datetime!(9999-12-31 23:59:59.999_999 UTC)
        );
        let now = datetime!(2026-02-10 12:00 UTC);
        assert_eq!(
            range(now, None, None).unwrap(),
            (
                datetime!(2026-02-01 0:00 UTC),
                datetime!(2026-03-01 0:00 UTC)
            )
        );
        assert_eq!(
            range(now, Some(datetime!(2026-01-15 0:00 UTC)), None).unwrap(),
            (
                datetime!(2026-01-15 0:00 UTC),
                datetime!(2026-03-01 0:00 UTC)
            )
        );
        assert!(range(now, Some(datetime!(2026-05-01 0:00 UTC)), None).is_err());
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageGroup {
    pub key: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub charged_micros: i64,
}

#[derive(Debug, Clone)]
pub struct UsageReport {
    /// The range reported, `[from, to)` (the defaults filled in).
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub total: UsageGroup,
    pub groups: Vec<UsageGroup>,
}

/// `GET /finops/usage`: token usage and charges of one side, in `[from, to)`.
pub async fn usage(
    deps: &Deps,
    ctx: &Ctx,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    side: UsageSideQuery,
    group_by: UsageGroupBy,
) -> Result<UsageReport, ServiceError> {
    use inventiv_persistence::repo::usage;
    let actor = ctx.actor();
    authorize(&actor, Action::ViewFinops)?;
    let (from, to) = range(ctx.now, from, to)?;
    if side == UsageSideQuery::Provider && group_by == UsageGroupBy::ApiKey {
        // SPEC §4.4: the provider sees its revenue by day, offering or org, never the
        // consumers' key ids.
        return Err(ServiceError::invalid(
            "group_by",
            "the provider side groups by day, offering or organization (a consumer's API keys are its own)",
        ));
    }
    let mut groups: BTreeMap<String, UsageGroup> = BTreeMap::new();
    let mut total = UsageGroup {
        key: "total".to_owned(),
        ..UsageGroup::default()
    };
    let none = || "none".to_owned();
    // Folded as the rows stream from the database: the report holds its groups, never the rows.
    let add = |row: usage::UsageRow| {
        let key = match group_by {
            UsageGroupBy::Day => row.occurred_at.date().to_string(),
            UsageGroupBy::Offering => row.offering_id.map_or_else(none, |o| o.to_string()),
            UsageGroupBy::ApiKey => row.api_key_id.map_or_else(none, |k| k.to_string()),
            UsageGroupBy::Organization => match side {
                UsageSideQuery::Consumer => row
                    .provider_organization_id
                    .map_or_else(none, |o| o.to_string()),
                UsageSideQuery::Provider => row
                    .consumer_organization_id
                    .map_or_else(none, |o| o.to_string()),
            },
        };
        for group in [
            groups.entry(key.clone()).or_insert_with(|| UsageGroup {
                key,
                ..UsageGroup::default()
            }),
            &mut total,
        ] {
            group.requests += 1;
            group.input_tokens = group.input_tokens.saturating_add(row.input_tokens);
            group.output_tokens = group.output_tokens.saturating_add(row.output_tokens);
            group.charged_micros = group.charged_micros.saturating_add(row.charged_micros);
        }
    };
    match (actor.scope(), side) {
        (scope, UsageSideQuery::Consumer) => {
            usage::each_consumed(&deps.db, scope, from, to, add).await?
        }
        (Scope::Org(org), UsageSideQuery::Provider) => {
            usage::each_provided(&deps.db, org, from, to, add).await?
        }
        (Scope::Personal(_), UsageSideQuery::Provider) => {
            return Err(ServiceError::invalid(
                "side",
                "the personal workspace provides nothing; use side=consumer",
            ));
        }
    }
    Ok(UsageReport {
        from,
        to,
        total,
        groups: groups.into_values().collect(),
    })
}

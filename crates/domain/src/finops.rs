//! How a FinOps report is read (SPEC §4.3): the groupings of the cost and usage dashboards and
//! the side of the usage one reads. Parsed from query strings with [`FromStr`]: an unknown name
//! is a [`ValueError`] naming the parameter, with the accepted names as its reason.

use std::str::FromStr;

use crate::values::ValueError;

/// How a cost report is grouped (`group_by` of `GET /finops/dashboard/costs`; default `day`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "utoipa",
    derive(utoipa::ToSchema),
    schema(rename_all = "snake_case")
)]
pub enum GroupBy {
    /// By UTC day.
    #[default]
    Day,
    Instance,
    Model,
}

impl GroupBy {
    /// The wire name: `day`, `instance` or `model`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Instance => "instance",
            GroupBy::Model => "model",
        }
    }
}

impl FromStr for GroupBy {
    type Err = ValueError;

    /// Exact names. Field name: `group_by`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(GroupBy::Day),
            "instance" => Ok(GroupBy::Instance),
            "model" => Ok(GroupBy::Model),
            _ => Err(ValueError::new("group_by", "day, instance or model")),
        }
    }
}

/// Which side of the usage a dashboard reads (`side` of `GET /finops/usage`; default
/// `consumer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "utoipa",
    derive(utoipa::ToSchema),
    schema(rename_all = "snake_case")
)]
pub enum UsageSideQuery {
    /// What this workspace consumed (its spend).
    #[default]
    Consumer,
    /// What others consumed of this org's offerings (its revenue).
    Provider,
}

impl UsageSideQuery {
    /// The wire name: `consumer` or `provider`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            UsageSideQuery::Consumer => "consumer",
            UsageSideQuery::Provider => "provider",
        }
    }
}

impl FromStr for UsageSideQuery {
    type Err = ValueError;

    /// Exact names. Field name: `side`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "consumer" => Ok(UsageSideQuery::Consumer),
            "provider" => Ok(UsageSideQuery::Provider),
            _ => Err(ValueError::new("side", "consumer or provider")),
        }
    }
}

/// How a usage report is grouped (`group_by` of `GET /finops/usage`; default `day`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "utoipa",
    derive(utoipa::ToSchema),
    schema(rename_all = "snake_case")
)]
pub enum UsageGroupBy {
    #[default]
    Day,
    Offering,
    ApiKey,
    /// The counterparty: the provider (consumer side) or the consumer (provider side).
    Organization,
}

impl UsageGroupBy {
    /// The wire name: `day`, `offering`, `api_key` or `organization`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            UsageGroupBy::Day => "day",
            UsageGroupBy::Offering => "offering",
            UsageGroupBy::ApiKey => "api_key",
            UsageGroupBy::Organization => "organization",
        }
    }
}

impl FromStr for UsageGroupBy {
    type Err = ValueError;

    /// Exact names. Field name: `group_by`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(UsageGroupBy::Day),
            "offering" => Ok(UsageGroupBy::Offering),
            "api_key" => Ok(UsageGroupBy::ApiKey),
            "organization" => Ok(UsageGroupBy::Organization),
            _ => Err(ValueError::new(
                "group_by",
                "day, offering, api_key or organization",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_name_their_parameter() {
        for g in [GroupBy::Day, GroupBy::Instance, GroupBy::Model] {
            assert_eq!(g.as_str().parse::<GroupBy>().unwrap(), g);
        }
        for s in [UsageSideQuery::Consumer, UsageSideQuery::Provider] {
            assert_eq!(s.as_str().parse::<UsageSideQuery>().unwrap(), s);
        }
        for g in [
            UsageGroupBy::Day,
            UsageGroupBy::Offering,
            UsageGroupBy::ApiKey,
            UsageGroupBy::Organization,
        ] {
            assert_eq!(g.as_str().parse::<UsageGroupBy>().unwrap(), g);
        }
        let err = "Day".parse::<GroupBy>().unwrap_err();
        assert_eq!(
            (err.field, err.reason.as_str()),
            ("group_by", "day, instance or model")
        );
        assert_eq!("both".parse::<UsageSideQuery>().unwrap_err().field, "side");
        assert_eq!(
            "model".parse::<UsageGroupBy>().unwrap_err().field,
            "group_by"
        );
    }

    #[test]
    fn the_defaults_are_day_and_consumer() {
        assert_eq!(GroupBy::default(), GroupBy::Day);
        assert_eq!(UsageSideQuery::default(), UsageSideQuery::Consumer);
        assert_eq!(UsageGroupBy::default(), UsageGroupBy::Day);
    }
}

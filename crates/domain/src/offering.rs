//! An offering's visibility (SPEC §4.4), parsed from its name with [`FromStr`]: an unknown name
//! is a [`ValueError`] on `visibility`.

use std::str::FromStr;

use crate::values::ValueError;

/// Who an offering is meant for (default `private`); stored and sent by its name. Public
/// offerings are the ones the marketplace lists (SPEC §4.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "utoipa",
    derive(utoipa::ToSchema),
    schema(rename_all = "snake_case")
)]
pub enum Visibility {
    /// Offered org by org, through shares.
    #[default]
    Private,
    /// Open to every org.
    Public,
}

impl Visibility {
    /// The wire and database name: `private` or `public`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

impl FromStr for Visibility {
    type Err = ValueError;

    /// Exact names. Field name: `visibility`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "private" => Ok(Visibility::Private),
            "public" => Ok(Visibility::Public),
            _ => Err(ValueError::new("visibility", "private or public")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_default_is_private() {
        for v in [Visibility::Private, Visibility::Public] {
            assert_eq!(v.as_str().parse::<Visibility>().unwrap(), v);
        }
        assert_eq!(Visibility::default(), Visibility::Private);
        let err = "Public".parse::<Visibility>().unwrap_err();
        assert_eq!(
            (err.field, err.reason.as_str()),
            ("visibility", "private or public")
        );
    }
}

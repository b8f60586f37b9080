//! The SQL every repository repeats, written once: numbered parameters ([`Params`]), the
//! tenant filter of a [`Scope`] ([`owned_by`]) and keyset pages ([`push_page`]).
//!
//! Statements use `$n` placeholders (both backends accept them). [`Params`] hands out the
//! numbers in binding order, so a condition assembled from parts cannot bind a value under
//! another value's number.

use inventiv_domain::Scope;
use sea_orm::Value;

/// The values bound to one statement, in placeholder order.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<Value>);

impl Params {
    pub(crate) fn new() -> Params {
        Params::default()
    }

    /// Binds `value` and returns its placeholder (`$n`).
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }

    /// Binds each of `values` and returns their placeholders joined by commas (`IN (…)`).
    pub(crate) fn bind_all<V: Into<Value>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> String {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
        placeholders.join(", ")
    }

    pub(crate) fn into_values(self) -> Vec<Value> {
        self.0
    }
}

/// The tenant filter of `scope` on a table whose rows belong to an org (`org_column`) or,
/// with no org, to the user in `owner_column`: an org's rows, or the user's personal rows
/// (`organization_id` NULL), never another tenant's.
pub(crate) fn owned_by(
    scope: Scope,
    org_column: &str,
    owner_column: &str,
    p: &mut Params,
) -> String {
    match scope {
        Scope::Org(org) => format!("{org_column} = {}", p.bind(org.as_uuid())),
        Scope::Personal(user) => format!(
            "{org_column} IS NULL AND {owner_column} = {}",
            p.bind(user.as_uuid())
        ),
    }
}

/// One page of a listing ordered by a unique `key`. The cursor is the key of the last row the
/// client saw (ids are UUIDv7, so id order is creation order).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Page<K> {
    /// Ascending: the rows after the cursor (all from the start without one).
    After(Option<K>),
    /// Descending, newest first: the rows before the cursor.
    Before(Option<K>),
}

/// Appends the cursor condition of `page` (` AND key > $n`) and its `ORDER BY … LIMIT` to
/// `sql`, whose WHERE clause is open.
pub(crate) fn push_page<K: Into<Value>>(
    sql: &mut String,
    p: &mut Params,
    key: &str,
    page: Page<K>,
    limit: u64,
) {
    let (cursor, compare, order) = match page {
        Page::After(cursor) => (cursor, ">", ""),
        Page::Before(cursor) => (cursor, "<", " DESC"),
    };
    if let Some(cursor) = cursor {
        let placeholder = p.bind(cursor);
        sql.push_str(&format!(" AND {key} {compare} {placeholder}"));
    }
    sql.push_str(&format!(" ORDER BY {key}{order} LIMIT {limit}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventiv_domain::{OrgId, UserId};

    #[test]
    fn placeholders_follow_the_binding_order() {
        let mut p = Params::new();
        let scope = owned_by(
            Scope::Org(OrgId::new()),
            "k.organization_id",
            "k.owner_user_id",
            &mut p,
        );
        assert_eq!(scope, "k.organization_id = $1");
        let personal = owned_by(
            Scope::Personal(UserId::new()),
            "organization_id",
            "user_id",
            &mut p,
        );
        assert_eq!(personal, "organization_id IS NULL AND user_id = $2");
        assert_eq!(p.bind_all([1_i64, 2, 3]), "$3, $4, $5");
        assert_eq!(p.into_values().len(), 5);
    }

    #[test]
    fn pages_go_forwards_or_backwards_from_the_cursor() {
        let mut p = Params::new();
        let mut sql = String::from("SELECT 1 WHERE x = 1");
        push_page(&mut sql, &mut p, "t.id", Page::After(Some(7_i64)), 10);
        assert_eq!(
            sql,
            "SELECT 1 WHERE x = 1 AND t.id > $1 ORDER BY t.id LIMIT 10"
        );

        let mut sql = String::from("SELECT 1 WHERE x = 1");
        push_page(&mut sql, &mut p, "t.id", Page::Before(None::<i64>), 5);
        assert_eq!(sql, "SELECT 1 WHERE x = 1 ORDER BY t.id DESC LIMIT 5");
    }
}

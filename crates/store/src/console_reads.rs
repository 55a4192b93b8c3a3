//! What the web console reads beyond the API's own reads: a page of an organization's
//! users found by name or address, with the count the pager needs.

use mailplane_domain::Zoid;

use crate::db::{Db, Param};
use crate::read::{self, select_accounts};
use crate::{StoreError, UsersPage};

/// The most accounts one page holds, whatever the caller asks: each costs three reads.
pub const MAX_USERS_PAGE: u32 = 200;

/// The longest search text that can match. No field searched is longer (an address has
/// at most 254 characters, a name 100), so a longer text matches nothing and is not sent
/// to the database at all.
pub const MAX_SEARCH_CHARS: usize = 254;

/// The users a listing holds: the organization's, each by its hosted account.
macro_rules! org_users {
    ($($rest:literal)*) => {
        concat!("WHERE u.zoid = $1 AND a.kind = 'ZOHO_ACCOUNT' ", $($rest),*)
    };
}

/// Those whose first, last or display name, or any address of any of their accounts,
/// holds the pattern `$2` (see [`like_pattern`]). Both sides go through `lower()`, so
/// each backend folds them alike: ASCII letters on both, the others on PostgreSQL only
/// (SQLite's `lower()` knows ASCII alone). Either way a text typed as stored matches.
///
/// The users found by name and those found by address are a `UNION`, each side read
/// within the organization, rather than an `OR` of an `EXISTS`: PostgreSQL costs that
/// `OR` as one subquery per user, which with 10,000 users passes its JIT threshold and
/// spends more compiling the query than running it.
macro_rules! matching {
    ($($rest:literal)*) => {
        org_users!(
            "AND u.zuid IN ( \
               SELECT zuid FROM users WHERE zoid = $1 \
                 AND (lower(first_name) LIKE lower($2) ESCAPE '\\' \
                   OR lower(last_name) LIKE lower($2) ESCAPE '\\' \
                   OR lower(display_name) LIKE lower($2) ESCAPE '\\') \
               UNION \
               SELECT s.zuid FROM users m JOIN accounts s ON s.zuid = m.zuid \
                 JOIN addresses d ON d.account_id = s.account_id \
                 WHERE m.zoid = $1 AND lower(d.address) LIKE lower($2) ESCAPE '\\') "
            $($rest)*
        )
    };
}

const COUNT_ALL: &str = concat!(
    "SELECT COUNT(*) AS n FROM accounts a JOIN users u ON u.zuid = a.zuid ",
    org_users!()
);
const PAGE_ALL: &str = select_accounts!(org_users!("ORDER BY u.zuid LIMIT $2 OFFSET $3"));
const COUNT_MATCHING: &str = concat!(
    "SELECT COUNT(*) AS n FROM accounts a JOIN users u ON u.zuid = a.zuid ",
    matching!()
);
/// The page of a search with the number of users it found on every row: the search's
/// scan is the cost of the query, and a window over it counts in the same scan.
const PAGE_MATCHING: &str = concat!(
    "SELECT t.*, COUNT(*) OVER () AS total FROM (",
    select_accounts!(matching!()),
    ") t ORDER BY t.zuid LIMIT $3 OFFSET $4"
);

/// `text` as a `LIKE` pattern that finds it anywhere, its own `%`, `_` and `\` taken
/// literally (escaped with `\`, the `ESCAPE` of [`matching!`]).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A page of the organization's users, by zuid: all of them when `search` (trimmed) is
/// empty, else those it finds (see [`matching!`]). The page and the count are both cut
/// in the database; only the page's accounts are loaded whole.
pub(crate) async fn users_page<D: Db>(
    db: &D,
    zoid: Zoid,
    search: &str,
    start: u32,
    limit: u32,
) -> Result<UsersPage, StoreError> {
    let search = search.trim();
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Ok(UsersPage {
            total: 0,
            accounts: Vec::new(),
        });
    }
    let (id, limit, start) = (
        zoid.as_i64(),
        i64::from(limit.min(MAX_USERS_PAGE)),
        i64::from(start),
    );
    let count = |r: &crate::db::Row<'_>| r.get::<i64>("n");
    // The count and the page are sent together (one round trip on PostgreSQL).
    let (total, accounts) = if search.is_empty() {
        let paged: [&dyn Param; 3] = [&id, &limit, &start];
        tokio::try_join!(
            db.one(COUNT_ALL, &paged[..1], count),
            read::views(db, PAGE_ALL, &paged)
        )?
    } else {
        let pattern = like_pattern(search);
        let paged: [&dyn Param; 4] = [&id, &pattern, &limit, &start];
        match read::counted_views(db, PAGE_MATCHING, &paged).await? {
            (Some(total), accounts) => (total, accounts),
            // No row from the start: nothing matches.
            (None, accounts) if start == 0 => (0, accounts),
            // A page past the last has no row to carry the count.
            (None, accounts) => (db.one(COUNT_MATCHING, &paged[..2], count).await?, accounts),
        }
    };
    Ok(UsersPage {
        total: u64::try_from(total).unwrap_or_default(),
        accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn a_pattern_takes_the_texts_wildcards_literally() {
        assert_eq!(like_pattern("ann"), "%ann%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(like_pattern(""), "%%");
    }
}

//! The web console's sessions. A session is a token of kind `console`: the cookie holds
//! it, the table holds its digest, and every read and change made in the console is
//! authenticated, granted and audited exactly as the API's are. Two limits end it: the
//! absolute one (`expires_ms`) and the idle one (`idle_until_ms`, moved forward while the
//! session is used).

use mailplane_domain::{ScopeSet, Zuid};

use crate::db::Db;
use crate::secrets::{new_access_token, token_digest};
use crate::{now_ms, Principal, StoreError, Via};

/// How long a console session may last.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// From sign-in, whatever happens.
    pub absolute_ms: i64,
    /// Since the last request.
    pub idle_ms: i64,
}

/// The most live console sessions a user has: signing in once more ends the oldest. With
/// the rows of ended sessions removed at each sign-in, a user's rows stay bounded however
/// often they sign in.
pub const MAX_SESSIONS_PER_USER: i64 = 10;

/// A session is touched (its idle limit moved) at most once in this long: a page view is
/// not a write, except once a minute.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// A live console session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    /// When it ends if it is not used again.
    pub idle_until_ms: i64,
    idle_ms: i64,
}

impl ConsoleSession {
    /// Whether this request should move the idle limit forward.
    pub(crate) fn due_for_touch(&self, now: i64) -> bool {
        self.idle_until_ms < now + self.idle_ms - TOUCH_EVERY_MS
    }
}

/// Opens a session for `zuid`; the token, which only the cookie will hold.
pub(crate) async fn open<D: Db>(
    db: &D,
    zuid: Zuid,
    limits: SessionLimits,
) -> Result<String, StoreError> {
    let token = new_access_token();
    let now = now_ms();
    // Ended sessions leave no rows behind. The audit rows of their changes keep the
    // session's token id, which no other token is ever given.
    db.exec(
        "DELETE FROM tokens WHERE zuid = $1 AND kind = 'console' \
         AND (revoked_ms IS NOT NULL OR expires_ms <= $2 OR idle_until_ms <= $2)",
        &[&zuid.as_i64(), &now],
    )
    .await?;
    // The oldest live sessions beyond the limit, counting the one about to open.
    db.exec(
        "UPDATE tokens SET revoked_ms = $1 WHERE zuid = $2 AND kind = 'console' AND revoked_ms IS NULL \
         AND token_id <= (SELECT token_id FROM tokens WHERE zuid = $2 AND kind = 'console' \
                          AND revoked_ms IS NULL ORDER BY token_id DESC LIMIT 1 OFFSET $3)",
        &[&now, &zuid.as_i64(), &(MAX_SESSIONS_PER_USER - 1)],
    )
    .await?;
    // Every scope: what the session may do is the user's role's to say, read at each
    // request, as for any token.
    db.exec(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms, kind, idle_ms, idle_until_ms) \
         VALUES ($1, $2, $3, $4, $5, 'console', $6, $7)",
        &[
            &token_digest(&token),
            &zuid.as_i64(),
            &ScopeSet::everything().to_string(),
            &now,
            &now.saturating_add(limits.absolute_ms),
            &limits.idle_ms,
            &now.saturating_add(limits.idle_ms),
        ],
    )
    .await?;
    Ok(token)
}

/// The session's idle facts, when `digest` is a console token (live or not: the caller
/// authenticates it too).
pub(crate) async fn idle<D: Db>(db: &D, digest: &str) -> Result<Option<(i64, i64)>, StoreError> {
    db.row(
        "SELECT idle_ms, idle_until_ms FROM tokens WHERE digest = $1 AND kind = 'console'",
        &[&digest],
        |r| {
            Ok((
                r.get::<Option<i64>>("idle_ms")?,
                r.get::<Option<i64>>("idle_until_ms")?,
            ))
        },
    )
    .await
    .map(|found| match found {
        Some((Some(idle_ms), Some(until))) => Some((idle_ms, until)),
        _ => None,
    })
}

/// A live session from its token and idle facts.
pub(crate) fn live(
    principal: Option<Principal>,
    idle: Option<(i64, i64)>,
) -> Option<ConsoleSession> {
    match (principal, idle) {
        (Some(principal), Some((idle_ms, idle_until_ms))) if principal.via == Via::Console => {
            Some(ConsoleSession {
                principal,
                idle_until_ms,
                idle_ms,
            })
        }
        _ => None,
    }
}

/// Moves the idle limit of a live session forward.
pub(crate) async fn touch<D: Db>(db: &D, digest: &str, now: i64) -> Result<(), StoreError> {
    db.exec(
        "UPDATE tokens SET idle_until_ms = $1 + idle_ms \
         WHERE digest = $2 AND kind = 'console' AND revoked_ms IS NULL AND idle_until_ms > $1",
        &[&now, &digest],
    )
    .await?;
    Ok(())
}

/// Ends every console session of `zuid`; how many were live.
pub(crate) async fn end_all<D: Db>(db: &D, zuid: Zuid) -> Result<u64, StoreError> {
    db.exec(
        "UPDATE tokens SET revoked_ms = $1 WHERE zuid = $2 AND kind = 'console' AND revoked_ms IS NULL",
        &[&now_ms(), &zuid.as_i64()],
    )
    .await
}

//! Synthetic organizations for the benchmark (`mailplane bench`): many users at once, each
//! with one hosted account, its mailbox identity and a user token, inserted in bulk rather
//! than through the API (which would hash a password per user).

use mailplane_domain::{AccountId, IdentityMode, Role, Zoid, Zuid};

use crate::secrets::{new_access_token, token_digest};

/// The scopes of a synthetic user's token: what a mail client's token has.
pub(crate) const USER_SCOPES: &str = "ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE";

/// One seeded organization, with the tokens to drive it.
pub struct SyntheticOrg {
    pub zoid: Zoid,
    pub domain: String,
    /// The super admin's token (every scope).
    pub admin_token: String,
    pub accounts: Vec<SyntheticAccount>,
}

/// One seeded user and its hosted account.
pub struct SyntheticAccount {
    pub zuid: Zuid,
    pub account_id: AccountId,
    /// A token of the user with [`USER_SCOPES`].
    pub token: String,
}

/// The rows of one synthetic user, before the database gives it ids.
pub(crate) struct PlannedUser {
    pub first_name: String,
    pub address: String,
    pub token: String,
    pub digest: String,
}

impl PlannedUser {
    pub(crate) const ROLE: Role = Role::Member;
    pub(crate) const MODE: IdentityMode = IdentityMode::Mailbox;
}

/// `count` users of `domain`: `user1@domain`, `user2@domain`, …
pub(crate) fn plan(domain: &str, count: u32) -> Vec<PlannedUser> {
    (1..=count)
        .map(|i| {
            let token = new_access_token();
            PlannedUser {
                first_name: format!("User {i}"),
                address: format!("user{i}@{domain}"),
                digest: token_digest(&token),
                token,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{DbOptions, Location, RelayKey, Store};

    #[tokio::test]
    async fn seeded_users_can_use_their_tokens_on_their_own_accounts_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            Location::SqliteFile(dir.path().join("bench.db")),
            RelayKey::generate(),
            DbOptions::default(),
        )
        .await
        .unwrap();
        let orgs = store.seed_synthetic(2, 5).await.unwrap();
        assert_eq!(orgs.len(), 2);
        assert_ne!(orgs[0].zoid, orgs[1].zoid);
        for org in &orgs {
            assert_eq!(org.accounts.len(), 5);
            let admin = store.authenticate(&org.admin_token).await.unwrap().unwrap();
            assert_eq!(admin.zoid(), org.zoid);
            for a in &org.accounts {
                let user = store.authenticate(&a.token).await.unwrap().unwrap();
                assert_eq!((user.zuid(), user.zoid()), (a.zuid, org.zoid));
            }
        }
        let durability = store.durability().await.unwrap();
        assert!(!durability.weaker_than_default, "{durability:?}");
    }
}

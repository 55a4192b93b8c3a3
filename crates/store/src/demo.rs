//! The demo organization of the contract (§9): the ids of Zoho's seed samples, so the
//! samples run as written against a local server. Shared by every backend.

use mailplane_domain::{AccountId, EmailAddress, Role, Zoid, Zuid};

use crate::{NewUser, StoreError};

pub const ORG_NAME: &str = "Zylker";
pub const DOMAIN: &str = "zylker.com";
pub const POP_ADDRESS: &str = "rebecca@pop.example.net";
pub const IMAP_ADDRESS: &str = "rebecca@imap.example.net";

/// The demo's ids and users, built through the domain's constructors.
pub struct Demo {
    pub zoid: Zoid,
    pub admin: NewUser,
    pub rebecca: NewUser,
    pub rebecca_zuid: Zuid,
    pub rebecca_account: AccountId,
    pub pop_account: AccountId,
    pub imap_account: AccountId,
}

impl Demo {
    pub fn new() -> Result<Self, StoreError> {
        // The constants are valid; a failure would be a bug, reported rather than panicked.
        let bug = |what: &str| StoreError::Corrupt(format!("demo constant {what}"));
        let email = |s: &str| EmailAddress::parse(s).map_err(|_| bug(s));
        let mut admin = NewUser::minimal(email("admin@zylker.com")?, Role::SuperAdmin);
        admin.first_name = "Zylker".into();
        admin.last_name = "Admin".into();
        let mut rebecca = NewUser::minimal(email("becky@zylker.com")?, Role::Member);
        rebecca.first_name = "Rebecca".into();
        rebecca.display_name = Some("Rebecca".into());
        Ok(Demo {
            zoid: Zoid::new(12345678).map_err(|_| bug("zoid"))?,
            admin,
            rebecca,
            rebecca_zuid: Zuid::new(11111111).map_err(|_| bug("zuid"))?,
            rebecca_account: AccountId::new(2560636000000008002).map_err(|_| bug("account"))?,
            pop_account: AccountId::new(5111110000000008001).map_err(|_| bug("pop account"))?,
            imap_account: AccountId::new(5111110000000009001).map_err(|_| bug("imap account"))?,
        })
    }
}

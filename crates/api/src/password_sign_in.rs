//! Signing in with an email address and mailbox password, for the OAuth sign-in page and
//! the console alike: the same throttle, the same argon2 slots, the same answers.

use mailplane_domain::EmailAddress;
use mailplane_store::oauth::Credentials;
use mailplane_store::{secrets, StoreError};

use crate::password_work::PasswordWorkError;
use crate::signin_limit::{client_key, Throttled};
use crate::AppState;

/// The longest email a throttle key keeps: no address is longer, and a key must not
/// take whatever size a form sends.
const MAX_EMAIL_KEY: usize = 254;

/// How a sign-in ended.
pub(crate) enum SignIn {
    /// The right password of a user who has not expired.
    Signed(Credentials),
    /// No such user or the wrong password: the same answer for both.
    Wrong,
    /// The right password of an expired user (said only once the password is right).
    Expired,
    /// Too many failures for the account or the client; nothing was checked.
    Throttled(Throttled),
    /// Every argon2 slot stayed taken; nothing was checked or counted.
    Busy,
    Unavailable(StoreError),
}

/// Checks `email` and `password` for a client at `client_addr`.
pub(crate) async fn check(
    state: &AppState,
    client_addr: &str,
    email: &str,
    password: String,
) -> SignIn {
    let email = email.trim().to_ascii_lowercase();
    let credentials = match EmailAddress::parse(&email) {
        Ok(address) => match state.store.credentials(&address).await {
            Ok(c) => c,
            Err(e) => return SignIn::Unavailable(e),
        },
        Err(_) => None,
    };
    // Every address of an account counts against the account; an address that names no
    // user counts against itself, and is answered alike.
    let account_key = match &credentials {
        Some(c) => format!("zuid:{}", c.zuid),
        None => {
            let mut end = email.len().min(MAX_EMAIL_KEY);
            while !email.is_char_boundary(end) {
                end -= 1;
            }
            format!("email:{}", &email[..end])
        }
    };
    // Reserved before the argon2 work, so that parallel attempts cannot outrun the count.
    let attempt = match state
        .signin_limiter
        .begin(&account_key, &client_key(client_addr))
    {
        Ok(a) => a,
        Err(t) => return SignIn::Throttled(t),
    };
    let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
    // The same argon2 work whether or not the user exists: the answer takes the same time.
    let verified = match state
        .password_work
        .run(move || secrets::verify_password(hash.as_deref(), &password))
        .await
    {
        Ok(verified) => verified,
        // Nothing was checked: the attempt is given back uncounted (dropped without a
        // verdict), so a busy server never costs a user one of their free failures.
        Err(PasswordWorkError::Busy) => {
            drop(attempt);
            return SignIn::Busy;
        }
        Err(PasswordWorkError::Failed(cause)) => {
            tracing::error!(%cause, "password verification failed");
            false
        }
    };
    let Some(user) = credentials.filter(|_| verified) else {
        attempt.failed();
        return SignIn::Wrong;
    };
    attempt.succeeded();
    if user.expired() {
        return SignIn::Expired;
    }
    SignIn::Signed(user)
}

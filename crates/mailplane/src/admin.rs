//! `bootstrap` and `token`: operator commands that open the store directly.

use std::path::{Path, PathBuf};

use mailplane_domain::{EmailAddress, ScopeRequest, Zuid};
use mailplane_store::{secrets, DbOptions, Location, ProvisionError, RelayKey, Store};
use serde_json::json;

use crate::cli::{BootstrapArgs, ClientCreateArgs, GrantArgs, IssueArgs, RevokeArgs, StorageArgs};

pub const DEFAULT_DATA_DIR: &str = "mailplane-data";
const DB_FILE: &str = "mailplane.db";
const KEY_FILE: &str = "relay.key";

/// Opens the store of `--db` or of the data directory (created if needed). The relay key
/// comes from `MAILPLANE_RELAY_KEY` or the key file in the data directory.
pub async fn open_store(storage: &StorageArgs, data_dir: &Path) -> Result<Store, String> {
    create_private_dir(data_dir)?;
    let key = match std::env::var("MAILPLANE_RELAY_KEY") {
        Ok(hex) => RelayKey::from_hex(&hex).map_err(|e| format!("MAILPLANE_RELAY_KEY: {e}"))?,
        Err(_) => RelayKey::load_or_create(&data_dir.join(KEY_FILE))
            .map_err(|e| format!("relay key file: {e}"))?,
    };
    let location = match &storage.db {
        Some(url) => Location::parse_url(url).map_err(|e| e.to_string())?,
        None => Location::SqliteFile(data_dir.join(DB_FILE)),
    };
    let options = DbOptions {
        pool_size: storage.db_pool_size,
        timeout: std::time::Duration::from_millis(storage.db_timeout_ms.max(1)),
        write_queue: storage.write_queue.max(1),
    };
    Store::open(location, key, options)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// Creates the data directory readable by its owner only (it holds the database, the relay
/// key and possibly tokens). An existing directory is left as the operator made it.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))
}

/// Writes a file only its owner can read (mode 0600 from the start, not after).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(contents)
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn data_dir(storage: &StorageArgs) -> PathBuf {
    storage
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn provision_error(e: ProvisionError) -> String {
    match e {
        ProvisionError::Refused(m) => m,
        ProvisionError::Store(s) => format!("database: {s}"),
    }
}

pub async fn bootstrap(storage: StorageArgs, args: BootstrapArgs) -> Result<(), String> {
    let email = EmailAddress::parse(&args.admin_email).map_err(|_| {
        format!(
            "--admin-email {:?} is not an email address",
            args.admin_email
        )
    })?;
    let domain = mailplane_domain::parse_domain(&args.domain)
        .ok_or_else(|| format!("--domain {:?} is not a domain name", args.domain))?;
    if args.org_name.trim().is_empty() {
        return Err("--org-name must not be empty".into());
    }
    let hash = match args.admin_password {
        Some(p) if p.chars().count() < 8 => {
            return Err("--admin-password must be at least 8 characters".into())
        }
        Some(p) => Some(secrets::hash_password(&p).map_err(|e| e.to_string())?),
        None => None,
    };
    let store = open_store(&storage, &data_dir(&storage)).await?;
    let b = store
        .bootstrap(args.org_name.trim(), &domain, email, hash)
        .await
        .map_err(provision_error)?;
    println!(
        "{}",
        json!({ "zoid": b.zoid.get(), "zuid": b.zuid.get(), "accountId": b.account_id.to_string(), "accessToken": b.access_token })
    );
    Ok(())
}

pub async fn issue_token(storage: StorageArgs, args: IssueArgs) -> Result<(), String> {
    let zuid: Zuid = args
        .zuid
        .parse()
        .map_err(|_| format!("--zuid {:?} must be a positive integer", args.zuid))?;
    let request = scope_request(&args.scope)?;
    let expires = (args.expires_in > 0).then_some(args.expires_in);
    let store = open_store(&storage, &data_dir(&storage)).await?;
    // A bare access token has no grant to record the request in: it carries what it may do.
    let token = store
        .issue_token(zuid, request.served().clone(), expires)
        .await
        .map_err(provision_error)?;
    println!(
        "{}",
        json!({ "accessToken": token, "scope": request.served().to_string(), "unservedScopes": unserved(&request), "expiresIn": args.expires_in })
    );
    Ok(())
}

/// Opening the store creates and migrates the schema; that is all `migrate` does.
pub async fn migrate(storage: StorageArgs) -> Result<(), String> {
    open_store(&storage, &data_dir(&storage)).await?;
    println!("{}", json!({ "migrated": true }));
    Ok(())
}

pub async fn revoke_token(storage: StorageArgs, args: RevokeArgs) -> Result<(), String> {
    let store = open_store(&storage, &data_dir(&storage)).await?;
    if store
        .revoke_token(&args.token)
        .await
        .map_err(|e| e.to_string())?
    {
        println!("{}", json!({ "revoked": true }));
        Ok(())
    } else {
        Err("no live token matches".into())
    }
}

pub async fn create_client(storage: StorageArgs, args: ClientCreateArgs) -> Result<(), String> {
    if args.name.trim().is_empty() {
        return Err("--name must not be empty".into());
    }
    if let Some(uri) = &args.redirect_uri {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err("--redirect-uri must be an http or https URL".into());
        }
    }
    let store = open_store(&storage, &data_dir(&storage)).await?;
    let c = store
        .create_client(args.name.trim(), args.redirect_uri.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({ "clientId": c.client_id, "clientSecret": c.client_secret })
    );
    Ok(())
}

pub async fn oauth_grant(storage: StorageArgs, args: GrantArgs) -> Result<(), String> {
    let zuid: Zuid = args
        .zuid
        .parse()
        .map_err(|_| format!("--zuid {:?} must be a positive integer", args.zuid))?;
    let request = scope_request(&args.scope)?;
    let store = open_store(&storage, &data_dir(&storage)).await?;
    let token = store
        .oauth_grant(&args.client_id, zuid, request.clone())
        .await
        .map_err(provision_error)?;
    println!(
        "{}",
        json!({ "refreshToken": token, "scope": request.served().to_string(), "unservedScopes": unserved(&request) })
    );
    Ok(())
}

/// `--scope` read as a client's request: any of Zoho's scopes, at least one served here.
fn scope_request(text: &str) -> Result<ScopeRequest, String> {
    ScopeRequest::parse(text).map_err(|e| format!("--scope: {e}"))
}

/// The scopes asked for that give no access here, so that the operator sees them.
fn unserved(request: &ScopeRequest) -> Vec<String> {
    request.unserved().iter().map(ToString::to_string).collect()
}

/// `keys rotate`. Each step leaves a state the nodes can read: the key file first gains
/// the new version (both decrypt), then the passwords are re-encrypted in one
/// transaction, then the old version is retired from the file.
pub async fn rotate_key(storage: StorageArgs) -> Result<(), String> {
    if std::env::var_os("MAILPLANE_RELAY_KEY").is_some() {
        return Err("the key comes from MAILPLANE_RELAY_KEY: rotation works on the key file; unset the variable to rotate the file's key".into());
    }
    let dir = data_dir(&storage);
    let path = dir.join(KEY_FILE);
    let old = RelayKey::from_hex(
        &std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let both = old.rotated().map_err(|e| e.to_string())?;
    both.save(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let store = open_store(&storage, &dir).await?;
    let count = store
        .reencrypt_relay_passwords()
        .await
        .map_err(|e| format!("re-encrypting: {e}"))?;
    let current = both.current_only();
    current
        .save(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "{}",
        json!({ "keyVersion": current.current_version(), "retired": old.versions(), "reencrypted": count })
    );
    Ok(())
}

/// `keys check`: every stored relay password decrypts with the key in use.
pub async fn check_keys(storage: StorageArgs) -> Result<(), String> {
    let store = open_store(&storage, &data_dir(&storage)).await?;
    let (ok, failed) = store
        .check_relay_passwords()
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", json!({ "decrypted": ok, "failed": failed }));
    if failed > 0 {
        return Err(format!(
            "{failed} relay passwords do not decrypt with this key"
        ));
    }
    Ok(())
}

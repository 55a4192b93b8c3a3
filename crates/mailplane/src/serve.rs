//! `mailplane serve`: open the store, optionally seed the demo organization, serve until
//! SIGTERM or Ctrl-C.

use std::io::Write;

use std::sync::Arc;
use std::time::Duration;

use mailplane_api::{
    AppState, BadTokenLimit, ConsoleSettings, PasswordWork, RateLimiter, RefusalLog, RelayPolicy,
    SignInLimiter, SignInPolicy, TrustedProxies,
};
use mailplane_domain::EmailAddress;
use mailplane_outbound::{SubmitConfig, Submitter};
use mailplane_relaycheck::{CheckConfig, Checker, RelayChecks, RelayGuard, ScheduleConfig};
use serde_json::json;

use mailplane_store::retention::Retention;

use crate::admin::{data_dir, open_store, write_private};
use crate::cli::{ServeArgs, StorageArgs};

pub async fn run(storage: StorageArgs, args: ServeArgs) -> Result<(), String> {
    // --demo without --data-dir works in a temporary directory, removed on exit.
    let temp = if args.demo && storage.data_dir.is_none() {
        Some(
            tempfile::Builder::new()
                .prefix("mailplane-demo-")
                .tempdir()
                .map_err(|e| format!("temporary directory: {e}"))?,
        )
    } else {
        None
    };
    let dir = temp
        .as_ref()
        .map(|t| t.path().to_path_buf())
        .unwrap_or_else(|| data_dir(&storage));
    let store = open_store(&storage, &dir).await?;

    // The demo's sign-in, printed with the console's address once it is listening.
    let mut demo_sign_in = None;
    if args.demo {
        let tokens = store.seed_demo().await.map_err(|e| e.to_string())?;
        let file = dir.join("demo-tokens.json");
        let body = json!({
            "adminToken": tokens.admin_token,
            "userToken": tokens.user_token,
            "adminPassword": tokens.admin_password,
            "userPassword": tokens.user_password,
        });
        write_private(&file, body.to_string().as_bytes())?;
        println!(
            "demo organization Zylker (zoid 12345678) is ready; tokens and mailbox passwords are in {}",
            file.display()
        );
        println!("admin token (admin@zylker.com): {}", tokens.admin_token);
        println!(
            "user token (Rebecca, zuid 11111111, account 2560636000000008002): {}",
            tokens.user_token
        );
        println!(
            "mailbox passwords (IMAP, POP3, SMTP AUTH, OAuth sign-in): admin@zylker.com {}, becky@zylker.com {}",
            tokens.admin_password, tokens.user_password
        );
        demo_sign_in = Some((tokens.admin_password.clone(), tokens.user_password.clone()));
    }

    // The mail server's listeners start first: once the HTTP line is printed, everything is up.
    let services = mailplane_mailserver::Services {
        store: store.clone(),
        relay_guard: RelayGuard {
            allow_internal: args.allow_internal_relays,
        },
        recipient_delimiter: args.recipient_delimiter.clone(),
    };
    let limits = mailplane_mailserver::Limits {
        max_connections: args.postfix_max_connections as usize,
        max_new_per_client: args.postfix_max_new_per_client as usize,
        first_request: Duration::from_millis(args.postfix_first_request_ms.max(1)),
        idle: Duration::from_millis(args.postfix_idle_ms.max(1)),
    };
    if let Some(addr) = &args.policy_listen {
        let listener = mailplane_mailserver::bind(addr, false)
            .await
            .map_err(|e| e.to_string())?;
        let local = listener.address().map_err(|e| e.to_string())?;
        println!("mailplane policy service listening on {local}");
        tokio::spawn(mailplane_mailserver::policy::serve(
            listener,
            services.clone(),
            limits,
        ));
    }
    if let Some(addr) = &args.socketmap_listen {
        let listener = mailplane_mailserver::bind(addr, true)
            .await
            .map_err(|e| e.to_string())?;
        let local = listener.address().map_err(|e| e.to_string())?;
        println!("mailplane socketmap listening on {local}");
        tokio::spawn(mailplane_mailserver::socketmap::serve(
            listener,
            services.clone(),
            limits,
        ));
    }
    if let Some(addr) = &args.dovecot_listen {
        // Dovecot 2.3's dict proxy reaches UNIX sockets only, and this one hands out
        // password hashes: nothing else is accepted.
        if !addr.starts_with("unix:") {
            return Err(format!(
                "--dovecot-listen {addr}: the Dovecot dict listener serves password hashes \
                 and listens on a UNIX socket only (unix:PATH)"
            ));
        }
        let listener =
            mailplane_mailserver::bind_in_group(addr, true, args.dovecot_socket_group.as_deref())
                .await
                .map_err(|e| e.to_string())?;
        let local = listener.address().map_err(|e| e.to_string())?;
        println!("mailplane Dovecot dict listening on {local}");
        tokio::spawn(mailplane_mailserver::dict::serve(
            listener, services, limits,
        ));
    }

    let mail_submit = mail_submit(&args)?;
    let relay_checks = relay_checks(&args, &store)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();
    if let Some((admin, user)) = &demo_sign_in {
        println!(
            "console: {public_url}/ (sign in as admin@zylker.com with {admin}, or as becky@zylker.com with {user})"
        );
    }
    println!("mailplane listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, data_dir = %dir.display(), "serving");

    let console = ConsoleSettings::new(
        &public_url,
        args.console_idle_minutes,
        args.console_session_hours,
    );
    let state = AppState {
        store,
        public_url,
        access_token_ttl_secs: args.access_token_ttl.max(1),
        metrics: Arc::default(),
        relay_policy: RelayPolicy {
            allow_internal: args.allow_internal_relays,
        },
        rate_limiter: (args.rate_limit > 0.0).then(|| {
            Arc::new(RateLimiter::new(
                args.rate_limit,
                args.rate_limit_burst.unwrap_or(args.rate_limit),
            ))
        }),
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms.max(1)),
        max_connections: args.max_connections as usize,
        trusted_proxies: Arc::new(TrustedProxies::new(args.trusted_proxy)),
        bad_tokens: Arc::new(BadTokenLimit::new(
            if args.bad_token_limit == 0 {
                u32::MAX
            } else {
                args.bad_token_limit
            },
            Duration::from_secs(10),
        )),
        refusal_log: Arc::new(RefusalLog::new(
            Duration::from_millis(args.security_event_window_ms.max(1)),
            args.security_events_per_user,
        )),
        signin_limiter: Arc::new(SignInLimiter::new(SignInPolicy {
            free_failures: args.signin_max_failures,
            base_delay: Duration::from_millis(args.signin_delay_ms),
            client_max_failures: args.signin_client_max_failures,
            window: Duration::from_secs(args.signin_window),
        })),
        password_work: Arc::new(PasswordWork::new(
            args.argon2_slots
                .map_or_else(PasswordWork::cores, |n| n as usize),
            Duration::from_millis(args.argon2_wait_ms),
        )),
        mail_submit,
        relay_checks: relay_checks.clone(),
        console,
    };
    tokio::spawn(relay_checks.serve());
    // The two background writers, one task each: refusals counted and written per window,
    // and retention.
    let refusal_log = state.refusal_log.clone();
    refusal_log.spawn_flusher(state.store.clone());
    let days = |d: u32| (d > 0).then_some(d);
    Retention {
        audit_days: days(args.audit_retention_days),
        security_event_days: days(args.security_event_retention_days),
        every: Duration::from_millis(args.retention_interval_ms.max(1)),
    }
    .spawn(state.store.clone(), state.metrics.retention.clone());
    let store = state.store.clone();
    mailplane_api::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    // What was counted since the last window is written before the process ends.
    refusal_log.flush(&store).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The relay checks and their schedule, from the `--relay-*` flags.
fn relay_checks(args: &ServeArgs, store: &mailplane_store::Store) -> Result<RelayChecks, String> {
    let timeout = Duration::from_secs(args.relay_probe_timeout_secs);
    let checker = Checker::new(CheckConfig {
        timeout,
        helo: "localhost".into(),
        extra_roots: args.relay_ca_file.clone(),
    })
    .map_err(|e| format!("--relay-ca-file: {e}"))?;
    Ok(RelayChecks::new(
        store.clone(),
        RelayGuard {
            allow_internal: args.allow_internal_relays,
        },
        checker,
        ScheduleConfig {
            recheck: Duration::from_secs_f64(args.relay_recheck_hours * 3600.0),
            slots: args.relay_check_slots as usize,
            poll: Duration::from_secs(1),
            node: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            check_timeout: timeout,
        },
    ))
}

/// `--mail-submit` and the flags that go with it.
fn mail_submit(args: &ServeArgs) -> Result<Option<Submitter>, String> {
    let Some(server) = args.mail_submit.clone() else {
        return Ok(None);
    };
    let from = args
        .mail_from
        .as_deref()
        .map(|a| EmailAddress::parse(a).map_err(|e| format!("--mail-from {a:?}: {e}")))
        .transpose()?;
    if !server.contains(':') {
        return Err(format!("--mail-submit {server:?}: expected HOST:PORT"));
    }
    Ok(Some(Submitter::new(SubmitConfig {
        server,
        helo: "localhost".into(),
        step_timeout: Duration::from_millis(args.mail_submit_timeout_ms.max(1)),
        slots: args.mail_submit_slots as usize,
        from,
    })))
}

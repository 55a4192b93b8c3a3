//! The `mailplane` command: the server (`serve`) and the operator's tools (`bootstrap`,
//! `token`, `keys`, `oauth`, `postfix config`, `dovecot config`), and `bench`, its benchmark.

mod admin;
mod bench;
mod cli;
mod serve;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

// The server allocates a few short-lived buffers per request (headers, the JSON body, the
// statement's parameters); glibc's malloc showed as about a seventh of the HTTP threads' time
// in a profile, mimalloc's thread-local free lists make that cheaper.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `MAILPLANE_LOG` (default `info`), except that the PostgreSQL driver's statement log is
/// always off: at `debug` it prints every statement's parameters, which include password
/// hashes, token digests and sealed relay passwords, and no secret may reach a log line.
/// The directive names the driver's query module, so it outranks any broader one the
/// variable gives (`debug`, `tokio_postgres=trace`).
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILPLANE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match "tokio_postgres::query=info".parse() {
        Ok(quiet) => filter.add_directive(quiet),
        Err(_) => filter,
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(log_filter())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Serve(args) => serve::run(cli.storage, *args).await,
            cli::Command::Bootstrap(args) => admin::bootstrap(cli.storage, args).await,
            cli::Command::Token(cli::TokenCommand::Issue(args)) => {
                admin::issue_token(cli.storage, args).await
            }
            cli::Command::Token(cli::TokenCommand::Revoke(args)) => {
                admin::revoke_token(cli.storage, args).await
            }
            cli::Command::Migrate => admin::migrate(cli.storage).await,
            cli::Command::Keys(cli::KeysCommand::Rotate) => admin::rotate_key(cli.storage).await,
            cli::Command::Keys(cli::KeysCommand::Check) => admin::check_keys(cli.storage).await,
            cli::Command::Openapi => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&mailplane_api::openapi::document())
                        .unwrap_or_default()
                );
                Ok(())
            }
            cli::Command::Oauth(cli::OauthCommand::Client(cli::OauthClientCommand::Create(
                args,
            ))) => admin::create_client(cli.storage, args).await,
            cli::Command::Oauth(cli::OauthCommand::Grant(args)) => {
                admin::oauth_grant(cli.storage, args).await
            }
            cli::Command::Postfix(cli::PostfixCommand::Config(args)) => {
                wiring::postfix_config(args)
            }
            cli::Command::Dovecot(cli::DovecotCommand::Config(args)) => {
                wiring::dovecot_config(args)
            }
            cli::Command::Bench(args) => bench::run(cli.storage, args).await,
            cli::Command::BenchEcho(args) => bench::echo(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

//! petreld: the Petrel mail transfer agent daemon.
//!
//! Runs in the foreground and logs to standard error. Without `-f` it runs its embedded
//! default configuration: SMTP on 127.0.0.1 and ::1, port 2525.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use petrel_daemon::config_file;
use petrel_daemon::service::{Service, ServiceConfig};
use tokio::sync::watch;

/// Command-line options, as smtpd(8) has them.
#[derive(Debug, Parser)]
#[command(name = "petreld", version, about = "The Petrel mail transfer agent")]
struct Args {
    /// Use this configuration file instead of the embedded default.
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Check the configuration: print it in normal form and exit 0, or print the errors and
    /// exit 1.
    #[arg(short = 'n')]
    check: bool,
    /// Define a macro, overriding the configuration file's (repeatable).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    macros: Vec<String>,
    /// Log more (debug level).
    #[arg(short = 'v')]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match config_file::load(args.file.as_deref(), &args.macros) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Beyond the grammar: a `resolver static` file must read and parse.
    let base = args
        .file
        .as_deref()
        .and_then(std::path::Path::parent)
        .unwrap_or(std::path::Path::new("."));
    if let Err(e) = petrel_daemon::mta::resolver::check_config(&config, base) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if args.check {
        print!("{config}");
        return ExitCode::SUCCESS;
    }
    let level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PETREL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let service_config = match ServiceConfig::from_config(&config, &host_name()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("petreld: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("petreld: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let service = match Service::bind(service_config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("petreld: {e}");
                return ExitCode::FAILURE;
            }
        };
        for addr in service.local_addrs() {
            tracing::info!(%addr, "listening");
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        service.run(stop_rx).await;
        ExitCode::SUCCESS
    })
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The machine's host name, for the greeting.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

//! petreld: the Petrel mail transfer agent daemon.
//!
//! Runs in the foreground and logs to standard error. Without `-f` it runs its embedded
//! default configuration: SMTP on 127.0.0.1 and ::1, port 2525.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use petrel_core::session::server::ServerConfig;
use petrel_daemon::service::{Service, ServiceConfig};
use tokio::sync::watch;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "petreld", version, about = "The Petrel mail transfer agent")]
struct Args {
    /// Listen on this address instead of the default ones (repeatable), e.g. 127.0.0.1:2526.
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Log more (debug level).
    #[arg(short = 'v')]
    verbose: bool,
}

/// The default listen addresses: loopback only, on an unprivileged port.
const DEFAULT_LISTEN: [&str; 2] = ["127.0.0.1:2525", "[::1]:2525"];

fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PETREL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let listen = if args.listen.is_empty() {
        DEFAULT_LISTEN
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    } else {
        args.listen
    };
    let config = ServiceConfig {
        listen,
        server: ServerConfig {
            hostname: host_name(),
            ..ServerConfig::default()
        },
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
        let service = match Service::bind(config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("petreld: cannot listen: {e}");
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

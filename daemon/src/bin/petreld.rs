//! petreld: the Petrel mail transfer agent daemon.
//!
//! Runs in the foreground and logs to standard error. Without `-f` it runs its embedded
//! default configuration: SMTP on 127.0.0.1 and ::1, port 2525, mail for this machine filed
//! into maildirs under `./petrel-data/mail/`, the queue under `./petrel-data/queue/`.
//!
//! Signals: `SIGTERM` and `SIGINT` stop it (sessions are told 421); `SIGHUP` reloads the
//! tables — every `file:` table is read again and every `proc:` table is sent `update` —
//! without dropping sessions; a table file that does not parse leaves the current tables in
//! place and logs the error with its file and line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;

use petrel_core::config::QueueEncryption;
use petrel_daemon::config_file;
use petrel_daemon::control::server::{ConfigLoader, LogSwitch};
use petrel_daemon::control::{ControlHooks, socket_path};
use petrel_daemon::engine::{Engine, EngineOptions};

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
    /// The folder for the queue and the control socket.
    #[arg(short = 'd', value_name = "DIR", default_value = "petrel-data")]
    data_dir: PathBuf,
    /// Record every SMTP session into DIR/<session>.txt, in the transcript format
    /// `petrel-sim replay` plays back (credentials are not recorded).
    #[arg(short = 'T', value_name = "DIR")]
    transcripts: Option<PathBuf>,
    /// Write every report event as one JSON line, with the session's state, to FILE (`-`:
    /// standard output).
    #[arg(short = 'E', value_name = "FILE")]
    event_log: Option<PathBuf>,
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
    if let Err(e) = petrel_daemon::mta::resolver::check_config(&config, base)
        .and_then(|()| petrel_daemon::tls::check_config(&config))
    {
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
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter_reloading();
    // `petrelctl log verbose|brief` switches between debug and the level chosen at start.
    let reload = subscriber.reload_handle();
    subscriber.init();
    let log: LogSwitch = Arc::new(move |verbose| {
        let filter = tracing_subscriber::EnvFilter::new(if verbose { "debug" } else { level });
        reload.reload(filter).map_err(|e| e.to_string())
    });
    // `petrelctl reload` reads the configuration again, as it was read at start.
    let reload_config: ConfigLoader = {
        let (file, macros, base) = (args.file.clone(), args.macros.clone(), base.to_owned());
        Arc::new(move || {
            let config = config_file::load(file.as_deref(), &macros).map_err(|e| e.to_string())?;
            petrel_daemon::mta::resolver::check_config(&config, &base)?;
            petrel_daemon::tls::check_config(&config)?;
            Ok(config)
        })
    };

    let queue_key = match &config.queue.encryption {
        Some(QueueEncryption::Stdin) => match read_key_from_stdin() {
            Ok(key) => Some(key),
            Err(e) => {
                eprintln!("queue encryption: cannot read the key from standard input: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(QueueEncryption::Prompt) => match ask_for_key() {
            Ok(key) => Some(key),
            Err(e) => {
                eprintln!("queue encryption: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let options = EngineOptions {
        queue_key,
        hostname: host_name(),
        data_dir: cwd.join(&args.data_dir),
        base: cwd.join(base),
        // As given (relative to the folder the daemon runs in, unless absolute): a socket path
        // is limited to about a hundred bytes, which a deep working folder would exceed.
        control_socket: Some(socket_path(&args.data_dir)),
        enqueue_socket: Some(petrel_daemon::submit::enqueue_socket(&args.data_dir)),
        transcripts: args.transcripts.as_ref().map(|d| cwd.join(d)),
        event_log: args.event_log.as_ref().map(|f| {
            if f.as_os_str() == "-" {
                f.clone()
            } else {
                cwd.join(f)
            }
        }),
        hooks: ControlHooks {
            reload_config: Some(reload_config),
            log: Some(log),
        },
        ..EngineOptions::default()
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
        // Handlers first: a SIGHUP that arrives once "listening" is logged must reload, not
        // kill the daemon with the default action.
        let Some(mut signals) = Signals::new() else {
            eprintln!("petreld: cannot handle signals");
            return ExitCode::FAILURE;
        };
        let engine = match Engine::start(&config, options.clone()).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("petreld: {e}");
                return ExitCode::FAILURE;
            }
        };
        for addr in engine.addrs() {
            tracing::info!(%addr, "listening");
        }
        if let Some(socket) = &options.enqueue_socket {
            tracing::info!(socket = %socket.display(), "listening");
        }
        announce(&args, &options, engine.addrs());
        while signals.next().await == Signal::Reload {
            // The outcome is logged either way; a failed reload keeps the daemon running
            // with the tables it had.
            let _ = engine.reload_tables().await;
        }
        engine.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Tells the person who started the daemon where everything is and how to try it.
fn announce(args: &Args, options: &EngineOptions, addrs: &[std::net::SocketAddr]) {
    let config = args.file.as_ref().map_or_else(
        || "the embedded default (petreld -n prints it)".to_owned(),
        |f| f.display().to_string(),
    );
    eprintln!("petreld: configuration: {config}");
    eprintln!(
        "petreld: queue: {}",
        options.data_dir.join("queue").display()
    );
    if let Some(socket) = &options.control_socket {
        eprintln!(
            "petreld: control socket: {} (petrelctl -s PATH show queue)",
            socket.display()
        );
    }
    eprintln!(
        "petreld: local submission: {} (sendmail with PETREL_DATA={}, or petrelctl sendmail)",
        options
            .enqueue_socket
            .as_deref()
            .unwrap_or(&options.data_dir)
            .display(),
        options.data_dir.display()
    );
    if args.file.is_none() {
        eprintln!(
            "petreld: local mail is delivered into {}/mail/<user>/",
            options.data_dir.display()
        );
    }
    if let Some(addr) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        eprintln!(
            "petreld: try it: swaks --server {} --port {} --to you@localhost  (or any SMTP client)",
            addr.ip(),
            addr.port()
        );
    }
}
/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGHUP: reload the tables.
    Reload,
    /// SIGTERM or SIGINT: stop.
    Stop,
}

/// The signals petreld handles.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; `None` if that is impossible.
    fn new() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            term: signal(SignalKind::terminate()).ok()?,
            int: signal(SignalKind::interrupt()).ok()?,
            hup: signal(SignalKind::hangup()).ok()?,
        })
    }

    /// Waits for the next signal.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// The machine's host name, for the greeting.
/// `queue encryption -`: the first line of standard input.
fn read_key_from_stdin() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `queue encryption` with no key: asked for on the terminal, without echo.
fn ask_for_key() -> Result<String, String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        return Err(
            "the key is asked for on a terminal, and standard input is not one; \
             write `queue encryption -` to read it from standard input"
                .into(),
        );
    }
    let saved = tcgetattr(&stdin).map_err(|e| e.to_string())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| e.to_string())?;
    eprint!("queue encryption key: ");
    let key = read_key_from_stdin();
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    key.map_err(|e| e.to_string())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

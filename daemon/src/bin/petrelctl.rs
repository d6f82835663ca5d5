//! petrelctl: inspects and steers a running petreld over its control socket.
//!
//! Exit status: 0 done; 1 the daemon could not do it (for `spf walk`: the walk met problems,
//! which it lists); 2 a usage error; 3 what was named does not exist (no such envelope,
//! message or table); 4 the daemon is not running or did not answer. `encrypt` and `spf walk`
//! work without the daemon.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use petrel_daemon::control::client::{self, ClientError};
use petrel_daemon::control::protocol::{Answer, ErrorKind, Request, Response};
use petrel_daemon::control::render::{monitor_line, render};
use petrel_daemon::mta::resolver::{self, HickoryResolver, Resolver, StaticResolver};
use petrel_daemon::{passwd_hash, spf};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "petrelctl", version, about = "Control a running petreld")]
struct Args {
    /// The daemon's control socket (`petreld.sock` in its state folder): by default
    /// `$PETREL_DATA/petreld.sock`, or `petrel-data/petreld.sock` without `PETREL_DATA`, the
    /// folder `sendmail` uses too.
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the daemon's answers as JSON, one object per line, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the queue, an envelope, a message, counters, filters or destinations.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Make envelopes due now: ID (message or envelope) or `all`.
    Schedule {
        /// A message id, an envelope id, or `all`.
        target: String,
    },
    /// Remove envelopes from the queue, without notifying their senders: ID or `all`.
    Remove {
        /// A message id, an envelope id, or `all`.
        target: String,
    },
    /// Pause local deliveries (mda), relaying (mta), new SMTP sessions (smtp), or one envelope.
    Pause {
        /// mda, mta, smtp or envelope.
        what: String,
        /// The envelope id, after `envelope`.
        id: Option<String>,
    },
    /// Resume what `pause` paused.
    Resume {
        /// mda, mta, smtp or envelope.
        what: String,
        /// The envelope id, after `envelope`.
        id: Option<String>,
    },
    /// Log debug lines (verbose) or not (brief).
    Log {
        /// verbose or brief.
        level: String,
    },
    /// Read a table again.
    Update {
        /// The word `table`.
        table: String,
        /// The table's name.
        name: String,
    },
    /// Read the configuration and the tables again, and route queued mail with them.
    Reload,
    /// Print the counters every second.
    Monitor,
    /// Print queue events as they happen, for one message or envelope or for everything.
    Trace {
        /// A message or envelope id.
        id: Option<String>,
    },
    /// Hash a password for a credentials table (read from standard input when not given).
    Encrypt {
        /// The password.
        password: Option<String>,
        /// bcrypt instead of sha512-crypt.
        #[arg(long)]
        bcrypt: bool,
    },
    /// Walk a domain's SPF record.
    Spf {
        #[command(subcommand)]
        what: Spf,
    },
    /// Send a message read from standard input, as `sendmail` does (`-t`, `-f ADDR`, `-F NAME`,
    /// `-i`, `-bs`, recipients); the daemon is the one whose control socket `-s` names.
    Sendmail {
        /// sendmail's options and the recipients.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Spf {
    /// Print every network the domain's SPF record allows, one per line, ready for a table;
    /// problems (loops, DNS errors, terms that name no networks) go to standard error.
    Walk {
        /// The domain.
        domain: String,
        /// Ask this nameserver (ADDRESS[:PORT], repeatable) instead of the system's.
        #[arg(long, value_name = "ADDRESS[:PORT]")]
        nameserver: Vec<String>,
        /// Answer from a static records file (the daemon's `resolver static` format).
        #[arg(long = "static", value_name = "FILE")]
        static_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Show {
    /// One line per queued envelope.
    Queue,
    /// An envelope's state and its history of attempts.
    Envelope {
        /// The envelope id.
        id: String,
    },
    /// A queued message's headers and size.
    Message {
        /// The message id (or one of its envelopes' ids).
        id: String,
    },
    /// Counters since the daemon started.
    Stats,
    /// Each filter's state.
    Filters,
    /// Per-destination delivery state.
    Hosts,
}

/// Exit statuses scripts can rely on.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_FOUND: u8 = 3;
const EXIT_NOT_RUNNING: u8 = 4;

fn request(command: Command) -> Result<Request, String> {
    Ok(match command {
        Command::Show { what } => match what {
            Show::Queue => Request::ShowQueue,
            Show::Envelope { id } => Request::ShowEnvelope { id },
            Show::Message { id } => Request::ShowMessage { id },
            Show::Stats => Request::ShowStats,
            Show::Filters => Request::ShowFilters,
            Show::Hosts => Request::ShowHosts,
        },
        Command::Schedule { target } => Request::Schedule { target },
        Command::Remove { target } => Request::Remove { target },
        Command::Pause { what, id } => Request::Pause { what, id },
        Command::Resume { what, id } => Request::Resume { what, id },
        Command::Log { level } => match level.as_str() {
            "verbose" => Request::Log { verbose: true },
            "brief" => Request::Log { verbose: false },
            other => return Err(format!("log {other}: say verbose or brief")),
        },
        Command::Update { table, name } => {
            if table != "table" {
                return Err(format!("update {table}: only `update table NAME` exists"));
            }
            Request::UpdateTable { name }
        }
        Command::Reload => Request::Reload,
        Command::Monitor => Request::Monitor,
        Command::Trace { id } => Request::Trace { id },
        Command::Encrypt { .. } | Command::Spf { .. } | Command::Sendmail { .. } => {
            return Err("not a request to the daemon".into());
        }
    })
}

/// The control socket: `-s PATH`, else the one in `$PETREL_DATA` (`petrel-data` without it).
fn control_socket(given: Option<&Path>) -> PathBuf {
    given.map_or_else(
        || {
            let data = std::env::var_os("PETREL_DATA")
                .map_or_else(|| PathBuf::from("petrel-data"), PathBuf::from);
            petrel_daemon::control::socket_path(&data)
        },
        Path::to_path_buf,
    )
}

/// `encrypt`: works without the daemon.
fn encrypt(password: Option<String>, bcrypt: bool) -> ExitCode {
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("petrelctl: cannot read the password: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let scheme = if bcrypt {
        passwd_hash::Scheme::Bcrypt
    } else {
        passwd_hash::Scheme::Sha512Crypt
    };
    match passwd_hash::hash(&password, scheme) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("petrelctl: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `spf walk`: works without the daemon. Exit 0 when the walk met no problem, 1 when it
/// reported some (the networks found are printed either way).
fn spf_walk(
    domain: &str,
    nameservers: &[String],
    static_file: Option<&Path>,
    json: bool,
) -> ExitCode {
    let resolver: Arc<dyn Resolver> = if let Some(file) = static_file {
        let base = file.parent().unwrap_or(Path::new("."));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match resolver::load_static(&name, base) {
            Ok(records) => Arc::new(StaticResolver::new(records)),
            Err(e) => {
                eprintln!("petrelctl: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        let mut servers = Vec::new();
        for n in nameservers {
            let addr = n
                .parse::<SocketAddr>()
                .or_else(|_| n.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
            match addr {
                Ok(a) => servers.push(a),
                Err(_) => {
                    eprintln!("petrelctl: --nameserver {n}: not an ADDRESS or ADDRESS:PORT");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
        let built = if servers.is_empty() {
            HickoryResolver::system()
        } else {
            HickoryResolver::with_nameservers(&servers, resolver::DNS_TIMEOUT)
        };
        match built {
            Ok(r) => Arc::new(r),
            Err(e) => {
                eprintln!("petrelctl: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("petrelctl: cannot start: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let walk = runtime.block_on(spf::walk(resolver.as_ref(), domain));
    let problems: Vec<String> = walk.problems.iter().map(ToString::to_string).collect();
    if json {
        let value = serde_json::json!({
            "domain": domain,
            "networks": walk.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "problems": problems,
        });
        println!("{value}");
    } else {
        print!("{}", walk.table());
        for p in &problems {
            eprintln!("petrelctl: {p}");
        }
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints one answer; returns the exit status it calls for.
fn print(response: &Response, json: bool, monitor: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    if json {
        let line = match response {
            Response::Ok { answer } => serde_json::to_string(answer),
            Response::Error { .. } => serde_json::to_string(response),
        };
        let _ = writeln!(out, "{}", line.unwrap_or_default());
    }
    match response {
        Response::Ok { answer } => {
            if !json {
                let text = match answer.as_ref() {
                    Answer::Stats(s) if monitor => monitor_line(s),
                    answer => render(answer, now()),
                };
                let _ = out.write_all(text.as_bytes());
            }
            let _ = out.flush();
            0
        }
        Response::Error { message, kind } => {
            let _ = out.flush();
            eprintln!("petrelctl: {message}");
            match kind {
                ErrorKind::NotFound => EXIT_NOT_FOUND,
                ErrorKind::Usage => EXIT_USAGE,
                ErrorKind::Failed => EXIT_FAILED,
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Command::Encrypt { password, bcrypt } => return encrypt(password.clone(), *bcrypt),
        Command::Spf {
            what:
                Spf::Walk {
                    domain,
                    nameserver,
                    static_file,
                },
        } => return spf_walk(domain, nameserver, static_file.as_deref(), args.json),
        Command::Sendmail { args: sendmail } => {
            // The enqueue socket and the offline queue sit next to the control socket.
            let socket = control_socket(args.socket.as_deref());
            let data_dir = socket.parent().unwrap_or(Path::new("."));
            return ExitCode::from(petrel_daemon::submit::run(sendmail, data_dir));
        }
        _ => {}
    }
    let stream = matches!(args.command, Command::Monitor | Command::Trace { .. });
    let monitor = matches!(args.command, Command::Monitor);
    let request = match request(args.command) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("petrelctl: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("petrelctl: cannot start: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let status = runtime.block_on(async {
        let mut answers = client::send(&control_socket(args.socket.as_deref()), &request).await?;
        let mut status = None;
        while let Some(response) = answers.next().await? {
            let s = print(&response, args.json, monitor);
            status = Some(s);
            if !stream || s != 0 {
                break;
            }
        }
        status.ok_or(ClientError::NoAnswer)
    });
    match status {
        Ok(s) => ExitCode::from(s),
        Err(e) => {
            eprintln!("petrelctl: {e}");
            ExitCode::from(match e {
                ClientError::NotRunning { .. } | ClientError::NoAnswer => EXIT_NOT_RUNNING,
                _ => EXIT_FAILED,
            })
        }
    }
}

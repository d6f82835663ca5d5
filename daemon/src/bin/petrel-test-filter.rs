//! `petrel-test-filter`: a scriptable filter speaking OpenSMTPD's filter protocol, for Petrel's
//! own tests and for trying filters out by hand. It can give every response and fail in every
//! way a filter can: slowly, silently, by crashing, or by writing garbage.
//!
//! ```text
//! petrel-test-filter [--log FILE] [--phases LIST] [--no-reports]
//!                    [--header "Name: value"] [--on PHASE:MATCH:ACTION]...
//! ```
//!
//! - `--log FILE`: append every line received from the daemon (tests read the exchange).
//! - `--phases LIST`: phases to register, comma separated (default: connect, helo, ehlo,
//!   mail-from, rcpt-to, data, data-line, commit).
//! - `--no-reports`: do not register for report events (default: `report|smtp-in|*`).
//! - `--out-reports`: also register for every smtp-out report event (`report|smtp-out|*`).
//! - `--header "Name: value"`: insert this header before the first data-line of each message.
//! - `--on PHASE:MATCH:ACTION`: when a request of PHASE has a parameter containing MATCH
//!   (empty matches everything), answer with ACTION instead of `proceed`: `junk`,
//!   `reject=MSG`, `disconnect=MSG`, `rewrite=VALUE`, `report=TEXT`, `hang` (never answer),
//!   `sleep=MS` (answer after a delay), `crash` (exit 1), `garbage` (write a line that is not
//!   the protocol), `wrong-token` (answer with another token), `drop` (data-line only: swallow
//!   the line), `unstuff` (data-line only: return it with one leading dot removed, as a filter
//!   that forgets the lines are dot-escaped would). The first matching rule wins.
//!
//! Data-lines are echoed back unchanged (byte for byte: they are read and written as bytes).

use std::io::{BufRead, Write};

struct Rule {
    phase: String,
    needle: Vec<u8>,
    action: String,
}

fn main() {
    let mut log: Option<std::fs::File> = None;
    let mut phases = "connect,helo,ehlo,mail-from,rcpt-to,data,data-line,commit".to_owned();
    let mut reports = true;
    let mut out_reports = false;
    let mut header: Option<String> = None;
    let mut rules = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--log" => {
                let path = value();
                log = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .unwrap_or_else(|e| fail(&format!("{path}: {e}"))),
                );
            }
            "--phases" => phases = value(),
            "--no-reports" => reports = false,
            "--out-reports" => out_reports = true,
            "--header" => header = Some(value()),
            "--on" => {
                let spec = value();
                let mut parts = spec.splitn(3, ':');
                let (Some(phase), Some(needle), Some(action)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    usage("--on");
                };
                rules.push(Rule {
                    phase: phase.to_owned(),
                    needle: needle.as_bytes().to_vec(),
                    action: action.to_owned(),
                });
            }
            _ => usage(&arg),
        }
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    // The handshake: read the config block, register, then serve.
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        record(&mut log, &line);
        if line.starts_with(b"config|ready") {
            break;
        }
    }
    if reports {
        writeln!(out, "register|report|smtp-in|*").ok();
    }
    if out_reports {
        writeln!(out, "register|report|smtp-out|*").ok();
    }
    for phase in phases.split(',').filter(|p| !p.is_empty()) {
        writeln!(out, "register|filter|smtp-in|{phase}").ok();
    }
    writeln!(out, "register|ready").ok();
    out.flush().ok();
    let mut in_message: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        record(&mut log, &line);
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if !text.starts_with(b"filter|") {
            continue;
        }
        // filter|VERSION|TIME|smtp-in|PHASE|SESSION|TOKEN|PARAM
        let fields: Vec<&[u8]> = text.splitn(8, |&b| b == b'|').collect();
        if fields.len() < 8 {
            continue;
        }
        let (phase, session, token, param) = (
            String::from_utf8_lossy(fields[4]).into_owned(),
            String::from_utf8_lossy(fields[5]).into_owned(),
            String::from_utf8_lossy(fields[6]).into_owned(),
            fields[7],
        );
        let rule = rules.iter().find(|r| {
            r.phase == phase
                && (r.needle.is_empty() || param.windows(r.needle.len()).any(|w| w == r.needle))
        });
        let action = rule.map_or("proceed", |r| r.action.as_str());
        match action {
            "hang" => continue,
            "crash" => std::process::exit(1),
            "garbage" => {
                writeln!(out, "this is not the filter protocol").ok();
                out.flush().ok();
                continue;
            }
            a if a.starts_with("sleep=") => {
                let ms = a["sleep=".len()..].parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            _ => {}
        }
        let token = if action == "wrong-token" {
            format!("{:016x}", u64::from_str_radix(&token, 16).unwrap_or(0) ^ 1)
        } else {
            token
        };
        if phase == "data-line" {
            if action == "drop" {
                continue;
            }
            let param = if action == "unstuff" && param.len() > 1 {
                param.strip_prefix(b".").unwrap_or(param)
            } else {
                param
            };
            let key = format!("{session}|{token}").into_bytes();
            if let Some(h) = &header
                && in_message.insert(key.clone())
            {
                writeln!(out, "filter-dataline|{session}|{token}|{h}").ok();
            }
            if param == b"." {
                in_message.remove(&key);
            }
            out.write_all(format!("filter-dataline|{session}|{token}|").as_bytes())
                .ok();
            out.write_all(param).ok();
            out.write_all(b"\n").ok();
            out.flush().ok();
            continue;
        }
        let response = match action {
            "junk" => "junk".to_owned(),
            a if a.contains('=') && !a.starts_with("sleep=") => {
                let (decision, value) = a.split_once('=').unwrap_or((a, ""));
                format!("{decision}|{value}")
            }
            _ => "proceed".to_owned(),
        };
        writeln!(out, "filter-result|{session}|{token}|{response}").ok();
        out.flush().ok();
    }
}

fn record(log: &mut Option<std::fs::File>, line: &[u8]) {
    if let Some(f) = log {
        f.write_all(line).ok();
        f.flush().ok();
    }
}

fn usage(arg: &str) -> ! {
    fail(&format!(
        "bad argument {arg}; see the documentation at the top of petrel-test-filter.rs"
    ))
}

fn fail(message: &str) -> ! {
    eprintln!("petrel-test-filter: {message}");
    std::process::exit(2)
}

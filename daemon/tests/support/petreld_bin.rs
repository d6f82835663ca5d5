//! Running the real `petreld` binary from a test: started, waited for until it says it
//! listens (never a sleep), its log drained so that it never blocks, stopped when dropped.

#![allow(dead_code)] // Each test file uses part of this.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running petreld; stopped with SIGTERM (and waited for) when dropped.
pub struct Petreld(pub Child);

impl Petreld {
    /// Stops it with SIGTERM and returns how it exited.
    pub fn stop(mut self) -> ExitStatus {
        let status = self.terminate();
        // Waited for: its pid may belong to another process now, so Drop must not signal it.
        std::mem::forget(self);
        status
    }

    fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().unwrap()
    }
}

impl Drop for Petreld {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Starts `command` (a petreld invocation) and returns once it logs that it listens. Panics
/// if it exits first.
pub fn start_listening(mut command: Command) -> Petreld {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "petreld exited early"
        );
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    Petreld(child)
}

/// A port outside the kernel's ephemeral range (so neither an outgoing connection nor another
/// test's `bind(0)` gets it between this check and the daemon's bind), chosen at random so that
/// concurrent tests rarely try the same one, and free now.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

//! Helper processes the daemon talks to over pipes (`proc:` tables, filters): how they are
//! started and stopped, the same way for both.

use std::process::Stdio;

/// `/bin/sh -c "exec COMMAND"` with pipes on its standard input, output and error, in a
/// process group of its own (a ^C at the terminal is the daemon's to handle, and stopping the
/// process stops whatever it started), killed if its handle is dropped.
#[must_use]
pub fn shell(command: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    c
}

/// Kills the process and its process group, and reaps it.
pub async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

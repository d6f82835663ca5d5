//! sendmail: hands a message to petreld through its enqueue socket, as programs that send mail
//! expect (`sendmail -t`, `sendmail -f sender rcpt…`, `sendmail -bs`). When the daemon is not
//! running, the message waits in its offline queue. The daemon's state folder is
//! `$PETREL_DATA`, `petrel-data` by default (as `petreld -d`). Exit codes are sysexits'.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data_dir =
        std::env::var_os("PETREL_DATA").map_or_else(|| PathBuf::from("petrel-data"), PathBuf::from);
    ExitCode::from(petrel_daemon::submit::run(&args, &data_dir))
}

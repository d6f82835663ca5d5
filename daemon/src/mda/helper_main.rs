//! `petrel-deliver`: writes a message into maildirs or mboxes with the rights of the user it
//! runs as. petreld, running as root, starts it with the recipient's uid and gid; see
//! `petrel_daemon::mda::as_user` for its interface.

fn main() -> std::process::ExitCode {
    petrel_daemon::mda::helper_main()
}

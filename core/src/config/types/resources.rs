//! Tables, certificates, processes and wrappers: the named things other directives use.

use crate::config::span::Span;

/// `table NAME …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The name, referred to as `<NAME>`.
    pub name: String,
    /// Where the entries come from.
    pub source: TableSource,
    /// The declaring directive.
    pub span: Span,
}

/// Where a table's entries come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableSource {
    /// `file:/path` or `/path`: a text file, read by the shell.
    File(String),
    /// `db:/path`: a Berkeley DB file built by makemap.
    Db(String),
    /// `proc:/path`: an external table process.
    Proc(String),
    /// `{ v1, v2 }`: a static list (also what `{ }` is).
    List(Vec<String>),
    /// `{ k1 = v1, k2 = v2 }`: a static mapping, in written order.
    Map(Vec<(String, String)>),
}

/// `pki NAME cert …` / `key …` / `dhe …`, merged by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pki {
    /// The name, lowercased (usually the host name it serves; `*` is the fallback).
    pub name: String,
    /// Certificate chain file.
    pub cert: String,
    /// Private key file.
    pub key: String,
    /// Diffie-Hellman parameters.
    pub dhe: Dhe,
    /// The first `pki NAME` directive.
    pub span: Span,
}

/// `pki NAME dhe …`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dhe {
    /// No DHE key exchange (the default).
    #[default]
    None,
    /// Automatic parameters.
    Auto,
    /// 1024-bit legacy parameters.
    Legacy,
}

/// `ca NAME cert PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    /// The name, lowercased.
    pub name: String,
    /// CA certificate file.
    pub cert: String,
    /// The declaring directive.
    pub span: Span,
}

/// A command run as a filter process, with the identity it runs under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcExec {
    /// The command line, run by the shell's `/bin/sh -c`.
    pub command: String,
    /// `user U`: run as this user.
    pub user: Option<String>,
    /// `group G`: run with this group.
    pub group: Option<String>,
    /// `chroot "dir"`: run chrooted there.
    pub chroot: Option<String>,
    /// `fail-open` (or the default `fail-closed`): what sessions get while the process is
    /// down, hung or broken.
    pub on_failure: crate::filter::chain::FailurePolicy,
    /// `timeout DURATION`: how long an answer may take before the process is deemed hung
    /// (`None`: the default, 30 seconds).
    pub timeout: Option<std::time::Duration>,
    /// `protocol VERSION`: the protocol version to speak (`None`: the newest, 0.7).
    pub protocol: Option<crate::filter::Version>,
}

/// `proc NAME "command" …`: a filter process several filters can share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// The name, referred to by `filter NAME proc PROC`.
    pub name: String,
    /// What to run.
    pub exec: ProcExec,
    /// The declaring directive.
    pub span: Span,
}

/// `mda wrapper NAME "command"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdaWrapper {
    /// The name, referred to by `wrapper NAME` in local actions.
    pub name: String,
    /// The wrapper command; format specifiers are expanded at delivery.
    pub command: String,
    /// The declaring directive.
    pub span: Span,
}

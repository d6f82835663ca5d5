//! The SMTP grammar: commands and their ESMTP parameters, paths, replies, command-line framing
//! and the data-transparency codecs. Pure functions and small codecs; no session state.

pub mod command;
pub mod dot;
pub mod framing;
pub mod params;
pub mod path;
pub mod reply;
mod scan;

#[cfg(test)]
mod reference;

pub use command::{Command, CommandError, ParseOptions};
pub use dot::{DataDecoder, DataFlags, DotStuffer, LineNormalizer};
pub use framing::{BareNewline, Frame, LineFramer};
pub use params::{Body, MailParams, Notify, Orcpt, ParamError, RcptParams, Ret};
pub use path::{AddressLiteral, ForwardPath, Host, Mailbox, PathError, PathOptions, ReversePath};
pub use reply::{EnhancedCode, Reply, ReplyError, ReplyParser};

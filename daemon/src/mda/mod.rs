//! Local delivery: the `maildir`, `mbox`, `lmtp` and `mda` methods of `action`, and the
//! `/path` (file) and `|command` (pipe) targets of aliases and `.forward` files.
//!
//! This first part holds the file writers: [`maildir`] (tmp → sync → new → sync the directory)
//! and [`mbox`] (mboxrd entries appended under [`lock`]s, cut back on failure), the message
//! forms they write ([`message`]), and the failure classification ([`error`]).

pub mod error;
pub mod local;
pub mod lock;
pub mod maildir;
pub mod mbox;
pub mod message;

pub use error::DeliveryError;

//! Where each recipient goes: tables, match rules, and the expansion of aliases, virtual
//! users and `.forward` files — OpenSMTPD's lookup process (`lka`), as pure logic.
//!
//! ```text
//! Config ──Ruleset::new──▶ Ruleset ──route──▶ Routed (action | 550 refusal | 451)
//!                              │
//!                              └──resolve──▶ Vec<Delivery> (relay, mailbox, file, command)
//!                                            or the reply refusing the recipient
//!                      both consult ──▶ dyn Lookups (tables, users, :include:, .forward)
//! ```
//!
//! - [`router`]: compiles the `match` rules and evaluates them first-match for one recipient.
//! - [`resolve`]: routes a recipient, expands it through alias/virtual tables, `.forward` and
//!   `:include:` files, routes the addresses that produces again as internal mail, and
//!   returns the deliveries (or the refusal).
//! - [`lookups`]: the [`Lookups`] seam the shell implements, [`StaticLookups`] over in-memory
//!   tables, and the built-in tables (`<localhost>`, `<anyhost>`, `<localnames>`,
//!   `<anydestination>`, `<getpwnam>`).
//! - [`table`], [`table_file`], [`alias`], [`netaddr`], [`address`], [`service`]: tables and
//!   the comparisons of each table service, the table file format, alias values, CIDR blocks,
//!   mail addresses.
//! - [`srs_route`]: SRS bounce decoding and the relay-time sender rewrite for forwarded mail.
//! - [`proc_table`]: the `proc:` table line protocol (codec and client state machine).
//!
//! Nothing here performs I/O: the shell reads table files and hands their text to
//! [`table_file::parse`] (or [`StaticLookups::from_config`]), spawns `proc:` table processes
//! and moves their lines, and answers [`Lookups`] calls.

pub mod address;
pub mod alias;
#[doc(hidden)]
pub mod fuzzing;
pub mod lookups;
pub mod netaddr;
pub mod proc_table;
pub mod resolve;
pub mod router;
pub mod senders;
pub mod service;
pub mod srs_route;
pub mod table;
pub mod table_file;

pub use address::MailAddr;
pub use alias::{AliasError, AliasTarget};
pub use lookups::{
    ForwardFile, LoadError, LocalNames, LookupError, Lookups, StaticLookups, UserInfo,
};
pub use netaddr::Cidr;
pub use proc_table::ProcTableClient;
pub use resolve::{Delivery, Recipient, Refusal, RunAs, Target};
pub use router::{RouteContext, Routed, Ruleset, RulesetError, SessionFacts, Source};
pub use service::Service;
pub use table::{Entries, Table, TableError};

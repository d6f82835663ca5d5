//! Tables, alias values and (with the configuration) match rules: the lookups that decide
//! where each recipient goes. Pure logic: the shell reads `file:` tables and hands their text to
//! [`table_file::parse`].

pub mod address;
pub mod alias;
#[doc(hidden)]
pub mod fuzzing;
pub mod lookups;
pub mod netaddr;
pub mod proc_table;
pub mod resolve;
pub mod router;
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
pub use resolve::{Delivery, Recipient, RunAs, Target};
pub use router::{RouteContext, Routed, Ruleset, RulesetError, SessionFacts, Source};
pub use service::Service;
pub use table::{Entries, Table, TableError};

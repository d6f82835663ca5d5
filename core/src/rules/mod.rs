//! Tables, alias values and (with the configuration) match rules: the lookups that decide
//! where each recipient goes. Pure logic: the shell reads `file:` tables and hands their text to
//! [`table_file::parse`].

pub mod alias;
pub mod netaddr;
pub mod table;
pub mod table_file;

pub use alias::{AliasError, AliasTarget};
pub use netaddr::Cidr;
pub use table::{Entries, Table, TableError};

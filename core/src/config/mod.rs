//! smtpd.conf: lexer, parser and typed configuration.

mod error;
mod keywords;
mod lexer;
mod span;
mod suggest;

pub use error::{ConfigError, ConfigErrors, ErrorKind, ItemKind};
pub use span::Span;

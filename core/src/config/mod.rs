//! smtpd.conf: lexer, parser and typed configuration.
//!
//! [`parse`] reads OpenSMTPD's configuration grammar (6.4 and later; the older `accept … deliver
//! to` grammar is refused with an error saying so) into a [`Config`]: typed, with the defaults
//! of smtpd.conf(5) filled in and the [`Span`] of every declared item kept for later messages.
//! Like the rest of the core it does no I/O: the caller passes the main file's text, a
//! [`SourceLoader`] for `include`d files, and the macros given on the command line.
//!
//! Errors are collected rather than fatal: parsing resumes at the next line, and every problem
//! found (syntax, undefined or duplicate names, conflicting options, invalid regular expressions,
//! filter conditions used at the wrong phase, …) is returned in one [`ConfigErrors`], each
//! rendered as `file:line:column: message` followed by the source line and a caret.
//!
//! `Config`'s `Display` is the normal form `petreld -n` prints: one directive per line, macros
//! expanded, includes inlined, items in dependency order, options in a fixed order, global
//! settings only where they differ from the defaults. Parsing it gives back the same
//! configuration: `parse(print(c)) == c` up to spans ([`Config::without_spans`]).
//!
//! ```
//! use petrel_core::config::{self, ParseOptions};
//!
//! let text = "table aliases { root = alice }\n\
//!             action local maildir alias <aliases>\n\
//!             match for local action local\n";
//! let config = config::parse("smtpd.conf", text, &ParseOptions::default()).unwrap();
//! assert_eq!(config.smtp.max_message_size, 35 * 1024 * 1024);
//! assert_eq!(
//!     config.to_string(),
//!     "table aliases { root = alice }\n\
//!      \n\
//!      action \"local\" maildir alias <aliases>\n\
//!      \n\
//!      match from local for local action \"local\"\n"
//! );
//! ```

mod error;
mod keywords;
mod lexer;
mod parser;
mod print;
mod span;
mod suggest;
mod types;
mod url;
mod values;

pub use error::{ConfigError, ConfigErrors, ErrorKind, ItemKind};
pub use span::Span;
pub use types::*;
pub use url::{RelayHost, RelayScheme, RelayUrl};
pub use values::SmtpReply;

/// Every keyword of the grammar: OpenSMTPD's reserved words, then Petrel's contextual ones
/// (the kinds of `filter` and the options of `filter … greylist`), for documentation and
/// tools that must cover them all.
#[must_use]
pub fn keywords() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = keywords::RESERVED.to_vec();
    for word in keywords::FILTER_KINDS
        .iter()
        .chain(keywords::GREYLIST_OPTIONS)
    {
        if !all.contains(word) {
            all.push(word);
        }
    }
    all
}

/// Reads the files named by `include` directives. The daemon reads the file system; tests and
/// the simulator serve text from memory.
pub trait SourceLoader {
    /// The text of the file at `path`, exactly as written in the directive (resolving a
    /// relative path is the loader's choice), or why it cannot be read.
    ///
    /// # Errors
    /// A short reason (e.g. "No such file or directory") shown in the configuration error.
    fn load(&self, path: &str) -> Result<String, String>;
}

/// A loader for configurations that must not include anything: every `include` is an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIncludes;

impl SourceLoader for NoIncludes {
    fn load(&self, _path: &str) -> Result<String, String> {
        Err("includes are not available here".into())
    }
}

/// What the parser needs besides the main file.
pub struct ParseOptions<'a> {
    /// Reads included files.
    pub loader: &'a dyn SourceLoader,
    /// Macros defined on the command line (`-D NAME=VALUE`), in order. The file cannot redefine
    /// them.
    pub macros: Vec<(String, String)>,
}

impl Default for ParseOptions<'_> {
    fn default() -> Self {
        ParseOptions {
            loader: &NoIncludes,
            macros: Vec::new(),
        }
    }
}

impl<'a> ParseOptions<'a> {
    /// Options reading includes through `loader`, with no predefined macros.
    #[must_use]
    pub fn with_loader(loader: &'a dyn SourceLoader) -> Self {
        ParseOptions {
            loader,
            macros: Vec::new(),
        }
    }

    /// Adds a command-line macro given as `NAME=VALUE`.
    ///
    /// # Errors
    /// When the argument has no `=` or the name is empty.
    pub fn define(&mut self, definition: &str) -> Result<(), String> {
        match definition.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                self.macros.push((name.to_owned(), value.to_owned()));
                Ok(())
            }
            _ => Err(format!(
                "invalid macro definition \"{definition}\": expected NAME=VALUE"
            )),
        }
    }
}

/// Parses a configuration: `name` is the main file's name as errors should show it, `text` its
/// contents.
///
/// # Errors
/// Every error found, in source order.
pub fn parse(name: &str, text: &str, options: &ParseOptions<'_>) -> Result<Config, ConfigErrors> {
    parser::Parser::new(options).parse(name, text)
}

//! "Each option at most once": which options of a directive were already given.

use super::super::error::{Diag, ErrorKind};
use super::super::span::Span;
use super::cursor::PResult;

/// The options seen so far in one directive, by group: options of one group exclude each other
/// (`tls`, `tls-require` and `smtps` are one group), and an option is its own group otherwise.
#[derive(Default)]
pub(super) struct Seen {
    entries: Vec<(&'static str, &'static str)>,
}

impl Seen {
    /// Records an option that may appear once.
    pub fn once(&mut self, option: &'static str, at: Span) -> PResult<()> {
        self.group(option, option, at)
    }

    /// Records an option of a group of mutually exclusive options.
    pub fn group(&mut self, group: &'static str, option: &'static str, at: Span) -> PResult<()> {
        if let Some(&(_, first)) = self.entries.iter().find(|(g, _)| *g == group) {
            let kind = if first == option {
                ErrorKind::Repeated(format!("`{option}`"))
            } else {
                ErrorKind::Conflict(format!("`{first}`"), format!("`{option}`"))
            };
            return Err(Diag::new(at, kind));
        }
        self.entries.push((group, option));
        Ok(())
    }
}

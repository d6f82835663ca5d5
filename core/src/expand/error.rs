//! Why a template could not be parsed or expanded.

use thiserror::Error;

use super::Variable;

/// A template error. Offsets are byte offsets of the `%` that starts the faulty `%{…}`, for the
/// configuration loader to turn into a span.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// `%{` without a closing `}`.
    #[error("unterminated %{{ at offset {offset}")]
    Unterminated {
        /// Where the `%{` starts.
        offset: usize,
    },
    /// The name inside `%{…}` is not a known variable.
    #[error("unknown variable \"{name}\" at offset {offset}")]
    UnknownVariable {
        /// The name as written.
        name: String,
        /// Where the `%{` starts.
        offset: usize,
    },
    /// The text between `[` and `]` is not `N`, `N:`, `:M` or `N:M`, or `]` is missing.
    #[error("bad substring \"[{spec}\" at offset {offset}: expected [N], [N:], [:M] or [N:M]")]
    BadSubstring {
        /// The text after `[`, as written.
        spec: String,
        /// Where the `%{` starts.
        offset: usize,
    },
    /// A modifier after `:` or `|` is not `lowercase`, `uppercase`, `strip` or `raw`.
    #[error(
        "unknown modifier \"{name}\" at offset {offset}: expected lowercase, uppercase, strip or raw"
    )]
    UnknownModifier {
        /// The modifier as written.
        name: String,
        /// Where the `%{` starts.
        offset: usize,
    },
    /// At delivery: the substring does not fit the value (OpenSMTPD fails the delivery too).
    #[error("substring [{spec}] does not fit %{{{variable}}} ({len} characters)")]
    SubstringOutOfRange {
        /// The variable being sliced.
        variable: Variable,
        /// The substring as written.
        spec: String,
        /// The length of the value, in characters; the value itself is not logged.
        len: usize,
    },
    /// At delivery: `%{mda}` used outside an mda wrapper.
    #[error("%{{mda}} is only available in mda wrappers")]
    MdaUnavailable,
}

impl ExpandError {
    /// The byte offset in the template, for errors found by parsing.
    #[must_use]
    pub fn offset(&self) -> Option<usize> {
        match self {
            ExpandError::Unterminated { offset }
            | ExpandError::UnknownVariable { offset, .. }
            | ExpandError::BadSubstring { offset, .. }
            | ExpandError::UnknownModifier { offset, .. } => Some(*offset),
            ExpandError::SubstringOutOfRange { .. } | ExpandError::MdaUnavailable => None,
        }
    }
}

//! Configuration errors: what went wrong, where, and how it is shown to the operator.

use std::fmt;

use super::span::{SourceFile, Span};

/// The kinds of named things a configuration defines and refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ItemKind {
    /// `table NAME …`, referred to as `<NAME>`.
    Table,
    /// `action NAME …`, referred to by `match … action NAME`.
    Action,
    /// `filter NAME …`, referred to by `filter NAME` options and chains.
    Filter,
    /// `proc NAME …`, referred to by `filter NAME proc PROC`.
    Proc,
    /// `pki NAME …`, referred to by `pki NAME` options.
    Pki,
    /// `ca NAME …`, referred to by `ca NAME` options.
    Ca,
    /// `mda wrapper NAME …`, referred to by `wrapper NAME`.
    MdaWrapper,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::Table => "table",
            ItemKind::Action => "action",
            ItemKind::Filter => "filter",
            ItemKind::Proc => "proc",
            ItemKind::Pki => "pki",
            ItemKind::Ca => "ca",
            ItemKind::MdaWrapper => "mda wrapper",
        })
    }
}

/// What is wrong with a configuration, without the position (see [`ConfigError`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A quoted string is not closed before the end of its line.
    #[error("unterminated quoted string")]
    UnterminatedString,
    /// A character that cannot appear outside quotes.
    #[error("unexpected character {0:?}; quote the value if it is meant literally")]
    UnexpectedChar(char),
    /// A backslash outside quotes that is not the last character of its line.
    #[error(
        "a backslash outside quotes must be the last character of the line (line continuation)"
    )]
    StrayBackslash,
    /// Blanks between a continuation backslash and the end of its line.
    #[error("blanks after the continuation backslash: the `\\` must end the line")]
    SpaceAfterBackslash,
    /// A `<` without a table name and a closing `>` on the same line.
    #[error("malformed table reference: expected <name>")]
    BadTableRef,
    /// A `$` not followed by a macro name.
    #[error("expected a macro name after `$` (letters, digits and `_`)")]
    BadMacroRef,
    /// A `{` whose `}` is missing.
    #[error("unclosed `{{`: expected `}}`")]
    UnclosedBrace,
    /// `$name` where no macro `name` is defined.
    #[error("undefined macro \"${0}\"")]
    UndefinedMacro(String),
    /// The value of a macro does not tokenize.
    #[error("in the expansion of \"${name}\": {reason}")]
    MacroValue {
        /// The macro's name.
        name: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A bare word where a keyword was expected.
    #[error("unknown keyword \"{found}\"{}", did_you_mean(.suggestion.as_deref()))]
    UnknownKeyword {
        /// The word found.
        found: String,
        /// The closest valid keyword, if one is close enough.
        suggestion: Option<String>,
    },
    /// A token that does not fit here.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar wanted.
        expected: String,
        /// What the file has.
        found: String,
    },
    /// The line ended before the directive was complete.
    #[error("expected {expected} at end of line")]
    UnexpectedEnd {
        /// What the grammar wanted.
        expected: String,
    },
    /// A reserved word used where a name or value is expected.
    #[error("\"{0}\" is a reserved word; write it in quotes to use it as a name or value")]
    ReservedWord(String),
    /// A directive of the grammar OpenSMTPD dropped in 6.4.
    #[error(
        "the `accept`/`reject … deliver to` grammar was removed in OpenSMTPD 6.4; \
         declare `action NAME …` dispatchers and `match … action NAME` rules instead"
    )]
    ObsoleteGrammar,
    /// An inline `{ … }` list where only a value or a table reference is accepted.
    #[error("an inline list is not accepted here; declare `table NAME {{ … }}` and write <NAME>")]
    InlineList,
    /// A value that does not parse.
    #[error("invalid {what} \"{value}\": {reason}")]
    InvalidValue {
        /// What kind of value (size, duration, port, …).
        what: &'static str,
        /// The value as written.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An included file could not be read.
    #[error("cannot include \"{path}\": {reason}")]
    Include {
        /// The path as written.
        path: String,
        /// The loader's explanation.
        reason: String,
    },
    /// A file includes itself, directly or through other files.
    #[error("\"{0}\" includes itself")]
    IncludeCycle(String),
    /// Includes nested too deeply.
    #[error("includes nested more than {0} deep")]
    IncludeTooDeep(usize),
    /// A reference to a name nothing defines.
    #[error("undefined {kind} \"{name}\"{}", did_you_mean(.suggestion.as_deref()))]
    Undefined {
        /// What kind of thing was referred to.
        kind: ItemKind,
        /// The name used.
        name: String,
        /// The closest defined name of that kind, if one is close enough.
        suggestion: Option<String>,
    },
    /// A reference to a name defined only further down.
    #[error("{kind} \"{name}\" is used before its definition at {defined_at}")]
    UsedBeforeDefinition {
        /// What kind of thing was referred to.
        kind: ItemKind,
        /// The name used.
        name: String,
        /// Where the definition is: `line N`, or `file:line:column` in another file.
        defined_at: String,
    },
    /// A second definition of a name.
    #[error("{kind} \"{name}\" is already defined at {first}")]
    Duplicate {
        /// What kind of thing is defined twice.
        kind: ItemKind,
        /// The name.
        name: String,
        /// Where the first definition is: `line N`, or `file:line:column` in another file.
        first: String,
    },
    /// An option given twice in one directive.
    #[error("{0} is given twice")]
    Repeated(String),
    /// A global setting given twice in the configuration.
    #[error("{option} is already set at {first}")]
    AlreadySet {
        /// The setting, e.g. "`queue ttl`".
        option: String,
        /// Where it was first set: `line N`, or `file:line:column` in another file.
        first: String,
    },
    /// Two options that exclude each other.
    #[error("{0} and {1} cannot be used together")]
    Conflict(String, String),
    /// An option that does not apply in this context.
    #[error("{option} is not allowed {context}")]
    NotAllowed {
        /// The option, e.g. "`user`".
        option: String,
        /// Where it was used, e.g. "with `mbox`".
        context: String,
    },
    /// An option that needs another one.
    #[error("{option} requires {requirement}")]
    Requires {
        /// The option that was given.
        option: String,
        /// What it needs.
        requirement: String,
    },
    /// A definition that lacks a part it must have.
    #[error("{what} has no {missing}")]
    Incomplete {
        /// The definition, e.g. "pki \"mx.example.org\"".
        what: String,
        /// The missing part, e.g. "`key`".
        missing: String,
    },
    /// A regular expression that does not compile.
    #[error("invalid regular expression \"{pattern}\": {reason}")]
    Regex {
        /// The expression.
        pattern: String,
        /// The regex compiler's complaint.
        reason: String,
    },
    /// A builtin filter condition not available at the filter's phase.
    #[error("condition `{condition}` is not available at phase {phase} (allowed: {allowed})")]
    ConditionNotInPhase {
        /// The condition keyword.
        condition: String,
        /// The phase keyword.
        phase: String,
        /// The conditions that are available there.
        allowed: String,
    },
    /// `junk` at phase commit, where the message is already accepted.
    #[error("`junk` is not allowed at phase commit: the message is already accepted")]
    JunkAtCommit,
    /// A reject/disconnect message that is not a 4xx/5xx reply.
    #[error(
        "invalid SMTP reply \"{0}\": expected a 4xx or 5xx code, a space and a text, \
         e.g. \"550 5.7.1 rejected\""
    )]
    InvalidReply(String),
    /// A filter chain that contains another chain.
    #[error("filter \"{0}\" is a chain; chains cannot contain chains")]
    NestedChain(String),
    /// The same filter twice in one chain.
    #[error("filter \"{0}\" appears twice in the chain")]
    DuplicateChainMember(String),
    /// Two filters of one chain that run the same process.
    #[error("filters \"{first}\" and \"{second}\" of the chain both run proc \"{proc_name}\"")]
    DuplicateChainProc {
        /// The shared process.
        proc_name: String,
        /// The first filter running it.
        first: String,
        /// The second filter running it.
        second: String,
    },
    /// More items than allowed.
    #[error("too many {what}: at most {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// An inline-declared table of the wrong shape for its use.
    #[error("table \"{name}\" cannot be used for {usage}: it needs {needs}")]
    TableShape {
        /// The table.
        name: String,
        /// What it is used for.
        usage: &'static str,
        /// The shape that use needs.
        needs: &'static str,
    },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(", did you mean \"{s}\"?"))
        .unwrap_or_default()
}

/// One configuration error with its position and the offending source line.
///
/// Its `Display` is three lines: `file:line:column: message`, the source line, and a caret under
/// the column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The file name as given to the parser or written in `include`.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
    /// The text of the offending line.
    pub source_line: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.kind
        )?;
        writeln!(f, "{}", self.source_line)?;
        // Copy tabs so the caret lines up however the terminal expands them.
        let mut pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let shown = pad.chars().count();
        pad.extend(std::iter::repeat_n(
            ' ',
            (self.column.saturating_sub(1) as usize).saturating_sub(shown),
        ));
        write!(f, "{pad}^")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// Every error found in one parse, in source order.
///
/// Its `Display` shows each error as [`ConfigError`] does, one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// The errors, in source order.
    #[must_use]
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The kinds of the errors, in source order; handy in tests.
    #[must_use]
    pub fn kinds(&self) -> Vec<&ErrorKind> {
        self.errors.iter().map(|e| &e.kind).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// An error as the parser records it: a span rather than a rendered position, and the number of
/// the statement it belongs to so that errors found late still print in source order.
#[derive(Clone, Debug)]
pub(crate) struct Diag {
    pub span: Span,
    pub kind: ErrorKind,
    pub seq: u32,
}

impl Diag {
    pub fn new(span: Span, kind: ErrorKind) -> Diag {
        Diag { span, kind, seq: 0 }
    }
}

/// Turns recorded diagnostics into rendered errors, in source order.
pub(crate) fn render(mut diags: Vec<Diag>, files: &[SourceFile]) -> ConfigErrors {
    diags.sort_by_key(|d| d.seq);
    let errors = diags
        .into_iter()
        .map(|d| {
            let file = &files[d.span.file as usize];
            ConfigError {
                kind: d.kind,
                file: file.name.clone(),
                line: d.span.line,
                column: d.span.column,
                source_line: file.line_text(d.span.line).to_owned(),
            }
        })
        .collect();
    ConfigErrors { errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_the_column() {
        let error = ConfigError {
            kind: ErrorKind::UnknownKeyword {
                found: "lisen".into(),
                suggestion: Some("listen".into()),
            },
            file: "/etc/petrel/smtpd.conf".into(),
            line: 12,
            column: 8,
            source_line: "listen lisen on lo".into(),
        };
        assert_eq!(
            error.to_string(),
            "/etc/petrel/smtpd.conf:12:8: unknown keyword \"lisen\", did you mean \"listen\"?\n\
             listen lisen on lo\n       ^"
        );
    }

    #[test]
    fn caret_keeps_tabs_and_may_point_past_the_end() {
        let error = ConfigError {
            kind: ErrorKind::UnexpectedEnd {
                expected: "a port".into(),
            },
            file: "f".into(),
            line: 1,
            column: 11,
            source_line: "\tport".into(),
        };
        assert_eq!(
            error.to_string(),
            "f:1:11: expected a port at end of line\n\tport\n\t         ^"
        );
    }
}

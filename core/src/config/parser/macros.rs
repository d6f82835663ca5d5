//! Macros: `name = value` definitions and `$name` expansion.
//!
//! A macro's value is tokenized again where it is used, so `opts = "tls pki mx"` expands to three
//! tokens; inside the value `$` is literal (no recursive expansion, as in OpenSMTPD).

use super::super::error::{Diag, ErrorKind};
use super::super::keywords::is_reserved;
use super::super::lexer::{self, Token, TokenKind};
use super::super::span::Span;
use super::cursor::{Cursor, PResult};
use super::{Parser, invalid};

pub(super) struct Macro {
    value: String,
    /// Defined on the command line: the file cannot redefine it (OpenSMTPD's rule).
    persist: bool,
}

impl Macro {
    /// A macro given on the command line (`-D NAME=VALUE`).
    pub(super) fn predefined(value: &str) -> Macro {
        Macro {
            value: value.to_owned(),
            persist: true,
        }
    }
}

impl Parser<'_> {
    pub(super) fn define_macro(&mut self, name: &str, span: Span, value: &[Token]) -> PResult<()> {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Diag::new(
                span,
                invalid("macro name", name, "use letters, digits and `_`"),
            ));
        }
        if is_reserved(name) {
            // Still defined below, so that its uses do not each report an undefined macro.
            self.diag(span, invalid("macro name", name, "it is a reserved word"));
        }
        let value = match value {
            [token] => match &token.kind {
                TokenKind::Word(v) | TokenKind::Quoted(v) => v.clone(),
                // `a = $b` copies b's value as it is, without tokenizing it.
                TokenKind::Macro(other) => match self.macros.get(other) {
                    Some(m) => m.value.clone(),
                    None => {
                        return Err(Diag::new(
                            token.span,
                            ErrorKind::UndefinedMacro(other.clone()),
                        ));
                    }
                },
                _ => return Err(Cursor::new(value, span).error("a macro value", &[])),
            },
            [] => {
                return Err(Diag::new(
                    self.end_of(span),
                    ErrorKind::UnexpectedEnd {
                        expected: "a macro value".into(),
                    },
                ));
            }
            [_, extra, ..] => {
                let expected = "end of line (quote a value with spaces)".into();
                return Err(Diag::new(
                    extra.span,
                    ErrorKind::Unexpected {
                        expected,
                        found: extra.describe(),
                    },
                ));
            }
        };
        if !self.macros.get(name).is_some_and(|m| m.persist) {
            self.macros.insert(
                name.to_owned(),
                Macro {
                    value,
                    persist: false,
                },
            );
        }
        Ok(())
    }

    /// Replaces each `$name` by its value's tokens. A macro that is undefined, or whose value
    /// does not tokenize, is reported and dropped; the flag says whether that happened.
    pub(super) fn expand(&mut self, tokens: &[Token]) -> (Vec<Token>, bool) {
        let mut out = Vec::with_capacity(tokens.len());
        let mut damaged = false;
        for token in tokens {
            let TokenKind::Macro(name) = &token.kind else {
                out.push(token.clone());
                continue;
            };
            let Some(value) = self.macros.get(name).map(|m| m.value.clone()) else {
                self.diag(token.span, ErrorKind::UndefinedMacro(name.clone()));
                damaged = true;
                continue;
            };
            for t in lexer::lex_expansion(&value, token.span) {
                match t.kind {
                    TokenKind::Newline => {}
                    TokenKind::Error(reason) => {
                        let kind = ErrorKind::MacroValue {
                            name: name.clone(),
                            reason: reason.to_string(),
                        };
                        self.diag(token.span, kind);
                        damaged = true;
                    }
                    _ => out.push(t),
                }
            }
        }
        (out, damaged)
    }
}

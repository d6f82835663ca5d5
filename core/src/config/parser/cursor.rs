//! A cursor over the tokens of one statement, with the "expected …, found …" logic in one place.

use super::super::error::{Diag, ErrorKind};
use super::super::keywords::{RESERVED, is_reserved};
use super::super::lexer::{Token, TokenKind};
use super::super::span::Span;
use super::super::suggest::closest;

/// The result of parsing part of a statement; an error abandons the statement.
pub(super) type PResult<T> = Result<T, Diag>;

pub(super) struct Cursor<'t> {
    tokens: &'t [Token],
    pos: usize,
    /// An empty span just past the last token, for "expected … at end of line".
    end: Span,
}

impl<'t> Cursor<'t> {
    pub fn new(tokens: &'t [Token], end: Span) -> Self {
        Cursor {
            tokens,
            pos: 0,
            end,
        }
    }

    pub fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    /// The next token's bare word, keyword or not.
    pub fn peek_word(&self) -> Option<&'t str> {
        self.peek().and_then(Token::word)
    }

    pub fn peek_kind(&self, kind: &TokenKind) -> bool {
        self.peek().is_some_and(|t| t.kind == *kind)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// The span of the next token, or the end of the statement.
    pub fn here(&self) -> Span {
        self.peek().map_or(self.end, |t| t.span)
    }

    /// Consumes the keyword if it is next.
    pub fn eat(&mut self, keyword: &str) -> Option<Span> {
        let span = self
            .peek()
            .filter(|t| t.word() == Some(keyword))
            .map(|t| t.span)?;
        self.pos += 1;
        Some(span)
    }

    /// Consumes a punctuation token if it is next.
    pub fn eat_kind(&mut self, kind: &TokenKind) -> Option<Span> {
        let span = self.peek().filter(|t| t.kind == *kind).map(|t| t.span)?;
        self.pos += 1;
        Some(span)
    }

    pub fn expect(&mut self, keyword: &'static str) -> PResult<Span> {
        self.eat(keyword)
            .ok_or_else(|| self.error(&format!("`{keyword}`"), &[keyword]))
    }

    pub fn expect_kind(&mut self, kind: &TokenKind, expected: &str) -> PResult<Span> {
        self.eat_kind(kind).ok_or_else(|| self.error(expected, &[]))
    }

    /// Consumes one of the candidate keywords.
    pub fn keyword(
        &mut self,
        expected: &str,
        candidates: &[&'static str],
    ) -> PResult<(&'static str, Span)> {
        let found = self.peek().and_then(|t| {
            let word = t.word()?;
            candidates
                .iter()
                .find(|c| **c == word)
                .map(|c| (*c, t.span))
        });
        match found {
            Some(found) => {
                self.pos += 1;
                Ok(found)
            }
            None => Err(self.error(expected, candidates)),
        }
    }

    /// Consumes a name or value: a quoted string or a bare word that is not reserved.
    pub fn string(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().map(|t| (&t.kind, t.span)) {
            Some((TokenKind::Quoted(s), span)) => {
                self.pos += 1;
                Ok((s.clone(), span))
            }
            Some((TokenKind::Word(w), span)) if is_reserved(w) => {
                Err(Diag::new(span, ErrorKind::ReservedWord(w.clone())))
            }
            Some((TokenKind::Word(w), span)) => {
                self.pos += 1;
                Ok((w.clone(), span))
            }
            _ => Err(self.error(what, &[])),
        }
    }

    /// Whether a name or value (see [`Cursor::string`]) is next.
    pub fn at_string(&self) -> bool {
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Quoted(_)) => true,
            Some(TokenKind::Word(w)) => !is_reserved(w),
            _ => false,
        }
    }

    /// Consumes a name: a quoted string or any bare word, reserved or not. Used where a name is
    /// the only thing that can follow, so a keyword there is unambiguous (`table senders …`,
    /// `filter rdns …` as in smtpd.conf(5)'s own examples), and for `port smtps`.
    pub fn name(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().map(|t| (&t.kind, t.span)) {
            Some((TokenKind::Quoted(s) | TokenKind::Word(s), span)) => {
                self.pos += 1;
                Ok((s.clone(), span))
            }
            _ => Err(self.error(what, &[])),
        }
    }

    /// Consumes a `<table>` reference.
    pub fn table_ref(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().map(|t| (&t.kind, t.span)) {
            Some((TokenKind::TableRef(name), span)) => {
                self.pos += 1;
                Ok((name.clone(), span))
            }
            Some((TokenKind::LBrace, span)) => Err(Diag::new(span, ErrorKind::InlineList)),
            _ => Err(self.error(what, &[])),
        }
    }

    pub fn at_table_ref(&self) -> bool {
        matches!(self.peek().map(|t| &t.kind), Some(TokenKind::TableRef(_)))
    }

    /// Requires the statement to be complete.
    pub fn finish(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error("end of line", &[]))
        }
    }

    /// The error for an unexpected next token. A bare word close to one of the candidates (or,
    /// failing that, to any keyword) is reported as a misspelt keyword.
    pub fn error(&self, expected: &str, candidates: &[&str]) -> Diag {
        let Some(token) = self.peek() else {
            return Diag::new(
                self.end,
                ErrorKind::UnexpectedEnd {
                    expected: expected.to_owned(),
                },
            );
        };
        let kind = match &token.kind {
            TokenKind::Word(w) if is_reserved(w) => ErrorKind::Unexpected {
                expected: expected.to_owned(),
                found: format!("keyword \"{w}\""),
            },
            TokenKind::Word(w) if !candidates.is_empty() => {
                match closest(w, candidates.iter().copied())
                    .or_else(|| closest(w, RESERVED.iter().copied()))
                {
                    Some(s) => ErrorKind::UnknownKeyword {
                        found: w.clone(),
                        suggestion: Some(s.to_owned()),
                    },
                    None => ErrorKind::Unexpected {
                        expected: expected.to_owned(),
                        found: token.describe(),
                    },
                }
            }
            _ => ErrorKind::Unexpected {
                expected: expected.to_owned(),
                found: token.describe(),
            },
        };
        Diag::new(token.span, kind)
    }
}

//! Splitting a file's tokens into statements.

use std::ops::Range;

use super::super::keywords::DIRECTIVES;
use super::super::lexer::{Token, TokenKind};

/// Splits a file's tokens into statements: a line break ends a statement, except inside `{ }`
/// (lists may span lines). Inside braces, a line starting with a directive keyword ends the
/// statement anyway: a reserved word cannot be a list item, so the `}` must be missing, and
/// cutting there confines the damage to one statement.
pub(super) fn split_statements(tokens: &[Token]) -> Vec<Range<usize>> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token.kind {
            TokenKind::LBrace => depth += 1,
            TokenKind::RBrace => depth = depth.saturating_sub(1),
            TokenKind::Newline => {
                let next = tokens[i + 1..]
                    .iter()
                    .find(|t| t.kind != TokenKind::Newline);
                let directive_next = next
                    .and_then(Token::word)
                    .is_some_and(|w| DIRECTIVES.contains(&w));
                if depth == 0 || directive_next {
                    if start < i {
                        statements.push(start..i);
                    }
                    start = i + 1;
                    depth = 0;
                }
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        statements.push(start..tokens.len());
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lexer;

    fn statements(text: &str) -> Vec<Vec<String>> {
        let tokens = lexer::lex(0, text);
        split_statements(&tokens)
            .into_iter()
            .map(|r| {
                tokens[r]
                    .iter()
                    .filter(|t| t.kind != TokenKind::Newline)
                    .map(|t| t.describe())
                    .collect()
            })
            .filter(|s: &Vec<String>| !s.is_empty())
            .collect()
    }

    #[test]
    fn statements_end_at_line_breaks_outside_braces() {
        assert_eq!(statements("a b\n\n c\n").len(), 2);
        assert_eq!(statements("table t {\n a,\n b\n}\nmatch x").len(), 2);
        // A missing `}` is cut at the next directive.
        let split = statements("table t { a,\n b\nlisten on lo\n");
        assert_eq!(split.len(), 2);
        assert_eq!(split[1][0], "\"listen\"");
    }
}

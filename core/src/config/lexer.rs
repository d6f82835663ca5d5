//! Tokenizer for smtpd.conf text.
//!
//! Rules (OpenSMTPD's, with the differences noted):
//! - `#` starts a comment to the end of the line. A comment line ending in `\` continues onto
//!   the next line, so a comment inside a `\`-continued block swallows the rest of the block.
//! - `\` at the very end of a line joins the next line; it separates tokens rather than gluing
//!   them (OpenSMTPD glues `a\⏎b` into `ab`, which nobody relies on). Blanks between the `\`
//!   and the line end are reported but the line is still joined. Anywhere else outside quotes a
//!   backslash is an error, where OpenSMTPD silently drops it.
//! - `"…"` and `'…'` quote; inside, `\"` (or `\'`), `\\`, `\ ` and a tab after `\` stand for
//!   the character, `\⏎` continues the line, and any other `\x` is kept as written so regular
//!   expressions need no doubling. A quoted string cannot contain a raw line break (OpenSMTPD
//!   drops it silently; an error points at the real mistake, a missing closing quote).
//! - Lexical errors become `Error` tokens in the stream; the parser reports them and still reads
//!   the statement (an unterminated string is taken to the end of its line) for what it declares.
//! - `$name` at the start of a token is a macro reference, expanded by the parser; inside a word
//!   or inside quotes `$` is literal. Macro values are tokenized again without expansion.
//! - `<name>` is a table reference; `{ } , = ! ` are tokens of their own; `=>` is `=`.
//! - Everything else is a bare word: letters, digits and punctuation other than the characters
//!   above. Line breaks are tokens: the parser splits statements on them.

use super::error::ErrorKind;
use super::span::{Span, to_u32};

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unquoted word: a keyword if reserved, otherwise a name or value.
    Word(String),
    /// A quoted string, never a keyword.
    Quoted(String),
    /// `<name>`.
    TableRef(String),
    /// `$name`.
    Macro(String),
    LBrace,
    RBrace,
    Comma,
    Equals,
    Bang,
    Newline,
    /// Where the text could not be tokenized; the statement holding it is reported and skipped.
    Error(ErrorKind),
}

/// A token and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl Token {
    /// The bare word this token is, if any.
    pub fn word(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(w) => Some(w),
            _ => None,
        }
    }

    /// How the token is shown in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Word(w) => format!("\"{w}\""),
            TokenKind::Quoted(s) => format!("string \"{s}\""),
            TokenKind::TableRef(t) => format!("<{t}>"),
            TokenKind::Macro(m) => format!("${m}"),
            TokenKind::LBrace => "`{`".into(),
            TokenKind::RBrace => "`}`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Equals => "`=`".into(),
            TokenKind::Bang => "`!`".into(),
            TokenKind::Newline => "end of line".into(),
            TokenKind::Error(_) => "an invalid token".into(),
        }
    }
}

/// Tokenizes one file.
pub(crate) fn lex(file: u32, text: &str) -> Vec<Token> {
    Lexer::new(file, text, true, None).run()
}

/// Tokenizes a macro's value for expansion: no further expansion, every token carrying the span
/// of the `$name` that is being expanded.
pub(crate) fn lex_expansion(text: &str, at: Span) -> Vec<Token> {
    Lexer::new(at.file, text, false, Some(at)).run()
}

/// Characters that end a bare word.
const DELIMITERS: &str = "(){}<>!=#,\"'\\";

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_ascii_punctuation() && !DELIMITERS.contains(c))
}

#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    line: u32,
    column: u32,
}

struct Lexer<'a> {
    text: &'a str,
    file: u32,
    pos: usize,
    line: u32,
    column: u32,
    expand_macros: bool,
    fixed_span: Option<Span>,
    tokens: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn new(file: u32, text: &'a str, expand_macros: bool, fixed_span: Option<Span>) -> Self {
        Lexer {
            text,
            file,
            pos: 0,
            line: 1,
            column: 1,
            expand_macros,
            fixed_span,
            tokens: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            column: self.column,
        }
    }

    fn push(&mut self, start: Mark, kind: TokenKind) {
        let span = self.fixed_span.unwrap_or(Span {
            file: self.file,
            offset: to_u32(start.pos),
            len: to_u32(self.pos - start.pos),
            line: start.line,
            column: start.column,
        });
        self.tokens.push(Token { kind, span });
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek() {
            let start = self.mark();
            match c {
                ' ' | '\t' | '\r' | '\x0c' => self.bump(),
                '\n' => {
                    self.bump();
                    self.push(start, TokenKind::Newline);
                }
                '\\' => self.backslash(start),
                '#' => self.comment(),
                '"' | '\'' => self.quoted(start, c),
                '<' => self.table_ref(start),
                '$' if self.expand_macros => self.macro_ref(start),
                '{' | '}' | ',' | '!' | '=' => {
                    self.bump();
                    let kind = match c {
                        '{' => TokenKind::LBrace,
                        '}' => TokenKind::RBrace,
                        ',' => TokenKind::Comma,
                        '!' => TokenKind::Bang,
                        _ => {
                            if self.peek() == Some('>') {
                                self.bump();
                            }
                            TokenKind::Equals
                        }
                    };
                    self.push(start, kind);
                }
                c if is_word_char(c) => self.word(start),
                other => {
                    self.bump();
                    self.push(start, TokenKind::Error(ErrorKind::UnexpectedChar(other)));
                }
            }
        }
        self.tokens
    }

    /// Consumes a line break (`\n` or `\r\n`) if one is next.
    fn eat_line_break(&mut self) -> bool {
        match (self.peek(), self.peek_second()) {
            (Some('\n'), _) => {
                self.bump();
                true
            }
            (Some('\r'), Some('\n')) => {
                self.bump();
                self.bump();
                true
            }
            _ => false,
        }
    }

    fn backslash(&mut self, start: Mark) {
        self.bump();
        if self.eat_line_break() {
            return;
        }
        let after = self.mark();
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
        if self.peek().is_some() && self.eat_line_break() {
            // Invisible trailing blanks: report them, but continue the line as meant.
            self.push(start, TokenKind::Error(ErrorKind::SpaceAfterBackslash));
        } else {
            self.pos = after.pos;
            self.line = after.line;
            self.column = after.column;
            self.push(start, TokenKind::Error(ErrorKind::StrayBackslash));
        }
    }

    fn comment(&mut self) {
        loop {
            let mut last = None;
            while let Some(c) = self.peek() {
                if c == '\n' {
                    break;
                }
                if c != '\r' {
                    last = Some(c);
                }
                self.bump();
            }
            // A continued comment line takes the next line with it.
            if last == Some('\\') && self.peek() == Some('\n') {
                self.bump();
            } else {
                return;
            }
        }
    }

    fn quoted(&mut self, start: Mark, quote: char) {
        self.bump();
        let mut value = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    // Reported, and taken to the end of the line so the statement still reads.
                    self.push(start, TokenKind::Error(ErrorKind::UnterminatedString));
                    let value = value.trim_end_matches('\r').to_owned();
                    self.push(start, TokenKind::Quoted(value));
                    return;
                }
                Some(c) if c == quote => {
                    self.bump();
                    self.push(start, TokenKind::Quoted(value));
                    return;
                }
                Some('\\') => {
                    self.bump();
                    if self.eat_line_break() {
                        continue;
                    }
                    match self.peek() {
                        Some(c) if c == quote || c == '\\' || c == ' ' || c == '\t' => {
                            value.push(c);
                            self.bump();
                        }
                        // Kept as written; the next character is read normally.
                        _ => value.push('\\'),
                    }
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    fn table_ref(&mut self, start: Mark) {
        self.bump();
        let content_start = self.pos;
        while let Some(c) = self.peek() {
            if c == '>' || c == '\n' {
                break;
            }
            self.bump();
        }
        if self.peek() != Some('>') {
            self.push(start, TokenKind::Error(ErrorKind::BadTableRef));
            return;
        }
        let content = self.text[content_start..self.pos].trim();
        let name = content
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(content)
            .to_owned();
        self.bump();
        let kind = if name.is_empty() || name.contains(char::is_whitespace) {
            TokenKind::Error(ErrorKind::BadTableRef)
        } else {
            TokenKind::TableRef(name)
        };
        self.push(start, kind);
    }

    fn macro_ref(&mut self, start: Mark) {
        self.bump();
        let name_start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let name = &self.text[name_start..self.pos];
        let kind = if name.is_empty() {
            TokenKind::Error(ErrorKind::BadMacroRef)
        } else {
            TokenKind::Macro(name.to_owned())
        };
        self.push(start, kind);
    }

    fn word(&mut self, start: Mark) {
        while self.peek().is_some_and(is_word_char) {
            self.bump();
        }
        let word = self.text[start.pos..self.pos].to_owned();
        self.push(start, TokenKind::Word(word));
    }
}

#[cfg(test)]
mod tests {
    use super::TokenKind::*;
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(0, text).into_iter().map(|t| t.kind).collect()
    }

    fn word(w: &str) -> TokenKind {
        Word(w.into())
    }

    fn quoted(s: &str) -> TokenKind {
        Quoted(s.into())
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            kinds("listen on lo0 port 25\n"),
            vec![
                word("listen"),
                word("on"),
                word("lo0"),
                word("port"),
                word("25"),
                Newline
            ]
        );
        assert_eq!(
            kinds("table t { a, b = c => d }"),
            vec![
                word("table"),
                word("t"),
                LBrace,
                word("a"),
                Comma,
                word("b"),
                Equals,
                word("c"),
                Equals,
                word("d"),
                RBrace
            ]
        );
        assert_eq!(kinds("!rdns"), vec![Bang, word("rdns")]);
        assert_eq!(
            kinds("file:/etc/mail/aliases smtp+tls://isp@[192.0.2.1]:587 *.example.org ::1"),
            vec![
                word("file:/etc/mail/aliases"),
                word("smtp+tls://isp@[192.0.2.1]:587"),
                word("*.example.org"),
                word("::1")
            ]
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(kinds(r#""a b" 'c d'"#), vec![quoted("a b"), quoted("c d")]);
        assert_eq!(kinds(r#""say \"hi\"""#), vec![quoted("say \"hi\"")]);
        assert_eq!(kinds(r#"'it\'s'"#), vec![quoted("it's")]);
        assert_eq!(kinds(r#""a\\b""#), vec![quoted("a\\b")]);
        // Unknown escapes stay as written: regular expressions need no doubling.
        assert_eq!(
            kinds(r#""^.*\.example\.org$""#),
            vec![quoted("^.*\\.example\\.org$")]
        );
        assert_eq!(kinds(r#""a\ b""#), vec![quoted("a b")]);
        // The other quote character needs no escape.
        assert_eq!(
            kinds(r#""it's" 'say "x"'"#),
            vec![quoted("it's"), quoted("say \"x\"")]
        );
        assert_eq!(kinds(r#""""#), vec![quoted("")]);
        // Keywords in quotes are plain strings; `$` and `#` in quotes are literal.
        assert_eq!(
            kinds(r#""local" "$x # y""#),
            vec![quoted("local"), quoted("$x # y")]
        );
    }

    #[test]
    fn unterminated_quotes_stop_at_the_line_end() {
        let tokens = lex(0, "a \"open\nb");
        assert_eq!(tokens[1].kind, Error(ErrorKind::UnterminatedString));
        assert_eq!((tokens[1].span.line, tokens[1].span.column), (1, 3));
        assert_eq!(tokens[2].kind, quoted("open"));
        assert_eq!(tokens[3].kind, Newline);
        assert_eq!(tokens[4].kind, word("b"));
        assert_eq!(
            kinds("'open\r\n"),
            vec![
                Error(ErrorKind::UnterminatedString),
                quoted("open"),
                Newline
            ]
        );
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            kinds("listen on lo \\\n  port 25\nx"),
            vec![
                word("listen"),
                word("on"),
                word("lo"),
                word("port"),
                word("25"),
                Newline,
                word("x")
            ]
        );
        // A continuation separates tokens, and works with CRLF line ends.
        assert_eq!(kinds("a\\\r\nb"), vec![word("a"), word("b")]);
        // Inside quotes it continues the string without a line break.
        assert_eq!(kinds("\"ab\\\ncd\""), vec![quoted("abcd")]);
        let tokens = lex(0, "a \\\n  b");
        assert_eq!((tokens[1].span.line, tokens[1].span.column), (2, 3));
    }

    #[test]
    fn stray_backslashes_are_errors() {
        // Blanks after a continuation backslash are reported, and the line still continues.
        assert_eq!(
            kinds("a \\ \t\nb"),
            vec![word("a"), Error(ErrorKind::SpaceAfterBackslash), word("b")]
        );
        assert_eq!(
            kinds("a \\ b"),
            vec![word("a"), Error(ErrorKind::StrayBackslash), word("b")]
        );
        assert_eq!(
            kinds("a \\ "),
            vec![word("a"), Error(ErrorKind::StrayBackslash)]
        );
        assert_eq!(
            kinds("a\\b"),
            vec![word("a"), Error(ErrorKind::StrayBackslash), word("b")]
        );
    }

    #[test]
    fn comments() {
        assert_eq!(kinds("# x\na # b c\n"), vec![Newline, word("a"), Newline]);
        assert_eq!(kinds("a#b"), vec![word("a")]);
        // A comment line ending in a backslash swallows the continued line too …
        assert_eq!(
            kinds("listen on lo \\\n # port 25 \\\n tls\nmatch"),
            vec![
                word("listen"),
                word("on"),
                word("lo"),
                Newline,
                word("match")
            ]
        );
        // … but a comment inside a continued block ends the block at its own line end.
        assert_eq!(
            kinds("listen on lo \\\n # comment\nmatch"),
            vec![
                word("listen"),
                word("on"),
                word("lo"),
                Newline,
                word("match")
            ]
        );
    }

    #[test]
    fn macros_and_table_refs() {
        assert_eq!(
            kinds("listen on $lan tag $t_1 <aliases> < spaced > <\"q\">"),
            vec![
                word("listen"),
                word("on"),
                Macro("lan".into()),
                word("tag"),
                Macro("t_1".into()),
                TableRef("aliases".into()),
                TableRef("spaced".into()),
                TableRef("q".into())
            ]
        );
        // `$` inside a word is literal.
        assert_eq!(kinds("a$b"), vec![word("a$b")]);
        assert_eq!(kinds("$ x"), vec![Error(ErrorKind::BadMacroRef), word("x")]);
        assert_eq!(kinds("<a\n"), vec![Error(ErrorKind::BadTableRef), Newline]);
        assert_eq!(kinds("<>"), vec![Error(ErrorKind::BadTableRef)]);
    }

    #[test]
    fn expansions_do_not_expand_again_and_carry_the_reference_span() {
        let at = Span {
            file: 2,
            offset: 10,
            len: 4,
            line: 3,
            column: 5,
        };
        let tokens = lex_expansion("$x \"a b\" c", at);
        assert_eq!(
            tokens.iter().map(|t| t.kind.clone()).collect::<Vec<_>>(),
            vec![word("$x"), quoted("a b"), word("c")]
        );
        assert!(tokens.iter().all(|t| t.span == at));
    }

    #[test]
    fn spans_count_characters() {
        let tokens = lex(0, "\"\u{e9}t\u{e9}\" x");
        assert_eq!((tokens[1].span.column, tokens[1].span.offset), (7, 8));
        assert_eq!(tokens[0].span.len, 7);
    }

    #[test]
    fn unexpected_characters() {
        assert_eq!(
            kinds("a (b)"),
            vec![
                word("a"),
                Error(ErrorKind::UnexpectedChar('(')),
                word("b"),
                Error(ErrorKind::UnexpectedChar(')'))
            ]
        );
    }
}

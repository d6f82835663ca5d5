//! The parser: splits token streams into statements, expands macros, follows includes, and
//! hands each statement to the function for its directive (one module per family of
//! directives). References between items are recorded as they are read and resolved once the
//! whole configuration is known (`check`), so an error can say "used before its definition"
//! rather than just "undefined".
//!
//! Error recovery is per statement: the first syntax error abandons the statement and parsing
//! resumes at the next one. Semantic problems that do not stop the reading of a statement are
//! recorded and the statement is kept, and a statement damaged by a lexical error or an
//! undefined macro is still read (its own errors muted) for the names it declares: one mistake
//! does not cascade into "undefined …" errors elsewhere.

mod action;
mod check;
mod cursor;
mod filter;
mod globals;
mod listen;
mod macros;
mod petrel;
mod resources;
mod rule;
mod seen;
mod statements;

use std::collections::HashMap;

use super::error::{ConfigErrors, Diag, ErrorKind, ItemKind, render};
use super::keywords::DIRECTIVES;
use super::lexer::{self, Token, TokenKind};
use super::span::{SourceFile, Span, to_u32};
use super::types::{Config, Dhe};
use super::{ParseOptions, SourceLoader};
use cursor::{Cursor, PResult};
use macros::Macro;
use statements::split_statements;

/// Includes nested deeper than this are refused, which also stops runaway recursion.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Tables every configuration has without declaring them.
const BUILTIN_TABLES: &[&str] = &[
    "localhost",
    "anyhost",
    "localnames",
    "anydestination",
    "getpwnam",
];

/// Where a name was declared, and by which statement.
struct Declared {
    span: Span,
    seq: u32,
}

/// What a table is used for, to check inline-declared tables have the right shape.
#[derive(Clone, Copy)]
pub(super) struct TableUse {
    usage: &'static str,
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    List,
    Map,
    /// A list of regular expressions, compiled at load time when declared inline.
    Regexes,
}

impl TableUse {
    pub const fn list(usage: &'static str) -> TableUse {
        TableUse {
            usage,
            shape: Shape::List,
        }
    }
    pub const fn map(usage: &'static str) -> TableUse {
        TableUse {
            usage,
            shape: Shape::Map,
        }
    }
    pub const fn regexes(usage: &'static str) -> TableUse {
        TableUse {
            usage,
            shape: Shape::Regexes,
        }
    }
}

/// A use of a name, resolved after parsing.
struct Reference {
    kind: ItemKind,
    name: String,
    span: Span,
    seq: u32,
    table_use: Option<TableUse>,
}

/// A chain (declared or anonymous), checked after parsing when its members' kinds are known.
struct ChainUse {
    members: Vec<(String, Span)>,
    seq: u32,
}

/// A pki being assembled from its `pki NAME …` lines.
struct PkiDraft {
    name: String,
    cert: Option<String>,
    key: Option<String>,
    dhe: Option<Dhe>,
    span: Span,
    seq: u32,
}

/// The state of one parse: the files read so far, macros, the configuration being built, and
/// what the checks after parsing need.
pub(crate) struct Parser<'o> {
    loader: &'o dyn SourceLoader,
    files: Vec<SourceFile>,
    macros: HashMap<String, Macro>,
    include_stack: Vec<String>,
    config: Config,
    diags: Vec<Diag>,
    /// Number of the statement being parsed, counted across includes in reading order.
    seq: u32,
    declared: HashMap<(ItemKind, String), Declared>,
    references: Vec<Reference>,
    chains: Vec<ChainUse>,
    pkis: Vec<PkiDraft>,
    /// Global settings already given, for "already set at …".
    settings: HashMap<&'static str, Span>,
    srs_uses: Vec<(Span, u32)>,
}

impl<'o> Parser<'o> {
    pub fn new(options: &ParseOptions<'o>) -> Self {
        let macros = options
            .macros
            .iter()
            .map(|(name, value)| (name.clone(), Macro::predefined(value)))
            .collect();
        Parser {
            loader: options.loader,
            files: Vec::new(),
            macros,
            include_stack: Vec::new(),
            config: Config::default(),
            diags: Vec::new(),
            seq: 0,
            declared: HashMap::new(),
            references: Vec::new(),
            chains: Vec::new(),
            pkis: Vec::new(),
            settings: HashMap::new(),
            srs_uses: Vec::new(),
        }
    }

    pub fn parse(mut self, name: &str, text: &str) -> Result<Config, ConfigErrors> {
        let file = self.add_file(name, text);
        self.include_stack.push(name.to_owned());
        self.parse_file(file);
        self.check();
        if self.diags.is_empty() {
            Ok(self.config)
        } else {
            Err(render(self.diags, &self.files))
        }
    }

    fn add_file(&mut self, name: &str, text: &str) -> u32 {
        self.files.push(SourceFile::new(name, text));
        self.config.files.push(name.to_owned());
        to_u32(self.files.len() - 1)
    }

    fn parse_file(&mut self, file: u32) {
        let tokens = lexer::lex(file, &self.files[file as usize].text);
        for range in split_statements(&tokens) {
            self.statement(&tokens[range]);
        }
    }

    /// Records an error that does not stop the statement.
    fn diag(&mut self, span: Span, kind: ErrorKind) {
        self.diags.push(Diag {
            span,
            kind,
            seq: self.seq,
        });
    }

    fn push(&mut self, mut diag: Diag) {
        diag.seq = self.seq;
        self.diags.push(diag);
    }

    fn statement(&mut self, raw: &[Token]) {
        self.seq += 1;
        let mut damaged = false;
        let mut tokens = Vec::with_capacity(raw.len());
        for token in raw {
            match &token.kind {
                TokenKind::Error(kind) => {
                    self.diag(token.span, kind.clone());
                    damaged = true;
                }
                TokenKind::Newline => {}
                _ => tokens.push(token.clone()),
            }
        }
        if let [name, equals, value @ ..] = tokens.as_slice()
            && let (TokenKind::Word(name), TokenKind::Equals) = (&name.kind, &equals.kind)
        {
            let span = tokens[0].span;
            self.read_muted(damaged, |p| p.define_macro(name, span, value));
            return;
        }
        let (tokens, expansion_damaged) = self.expand(&tokens);
        let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
            return;
        };
        let span = first.span.to(last.span);
        let mut cursor = Cursor::new(&tokens, self.end_of(last.span));
        self.read_muted(damaged || expansion_damaged, |p| {
            p.directive(&mut cursor, span)
        });
    }

    /// Reads a statement, reporting its errors unless it is already known to be damaged (by a
    /// lexical error or a failed macro expansion). A damaged statement is still read for the
    /// names it declares, so that its uses elsewhere do not report them undefined; its own
    /// errors would mostly be consequences of the damage already reported.
    fn read_muted(&mut self, damaged: bool, read: impl FnOnce(&mut Self) -> PResult<()>) {
        let mark = self.diags.len();
        let result = read(self);
        if damaged {
            self.diags.truncate(mark);
        } else if let Err(diag) = result {
            self.push(diag);
        }
    }

    /// An empty span just after `span`, for errors about what is missing there.
    fn end_of(&self, span: Span) -> Span {
        let offset = span.offset + span.len;
        let (line, column) = self.files[span.file as usize].position(offset as usize);
        Span {
            file: span.file,
            offset,
            len: 0,
            line,
            column,
        }
    }

    fn directive(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        if matches!(c.peek_word(), Some("accept" | "reject")) {
            return Err(Diag::new(c.here(), ErrorKind::ObsoleteGrammar));
        }
        // Petrel's directives are contextual keywords, recognised here only.
        let candidates: Vec<&'static str> = DIRECTIVES
            .iter()
            .chain(petrel::PETREL_DIRECTIVES)
            .copied()
            .collect();
        let (directive, _) = c.keyword("a directive", &candidates)?;
        match directive {
            "include" => self.include(c),
            "table" => self.table(c, span),
            "pki" => self.pki(c, span),
            "ca" => self.ca(c, span),
            "proc" => self.proc(c, span),
            "filter" => self.filter(c, span),
            "listen" => self.listen(c, span),
            "action" => self.action(c, span),
            "match" => self.match_rule(c, span),
            "smtp" => self.smtp(c),
            "queue" => self.queue(c),
            "srs" => self.srs(c),
            "bounce" => self.bounce(c),
            "mta" => self.mta(c, span),
            "scheduler" => self.scheduler(c),
            "admd" => self.admd(c),
            "mda" => self.mda(c, span),
            "resolver" => self.resolver(c, span),
            _ => unreachable!("every directive keyword is dispatched"),
        }
    }

    fn include(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let (path, span) = c.string("a file name")?;
        c.finish()?;
        if self.include_stack.len() > MAX_INCLUDE_DEPTH {
            return Err(Diag::new(
                span,
                ErrorKind::IncludeTooDeep(MAX_INCLUDE_DEPTH),
            ));
        }
        if self.include_stack.contains(&path) {
            return Err(Diag::new(span, ErrorKind::IncludeCycle(path)));
        }
        let text = self.loader.load(&path).map_err(|reason| {
            Diag::new(
                span,
                ErrorKind::Include {
                    path: path.clone(),
                    reason,
                },
            )
        })?;
        let file = self.add_file(&path, &text);
        self.include_stack.push(path);
        self.parse_file(file);
        self.include_stack.pop();
        Ok(())
    }

    /// Declares a name; false (and an error) if it is already declared.
    fn declare(&mut self, kind: ItemKind, name: &str, span: Span) -> bool {
        if let Some(first) = self.declared.get(&(kind, name.to_owned())) {
            let first = self.location(first.span, span);
            self.diag(
                span,
                ErrorKind::Duplicate {
                    kind,
                    name: name.to_owned(),
                    first,
                },
            );
            return false;
        }
        self.declared.insert(
            (kind, name.to_owned()),
            Declared {
                span,
                seq: self.seq,
            },
        );
        true
    }

    fn refer(&mut self, kind: ItemKind, name: &str, span: Span) {
        let seq = self.seq;
        self.references.push(Reference {
            kind,
            name: name.to_owned(),
            span,
            seq,
            table_use: None,
        });
    }

    /// Reads a `<table>` argument used as described.
    fn table_arg(&mut self, c: &mut Cursor<'_>, table_use: TableUse) -> PResult<String> {
        let (name, span) = c.table_ref(&format!("a table for {} (<name>)", table_use.usage))?;
        self.refer_table(&name, span, table_use);
        Ok(name)
    }

    fn refer_table(&mut self, name: &str, span: Span, table_use: TableUse) {
        let seq = self.seq;
        let kind = ItemKind::Table;
        self.references.push(Reference {
            kind,
            name: name.to_owned(),
            span,
            seq,
            table_use: Some(table_use),
        });
    }

    /// Records a global setting; an error if it was already set.
    fn setting(&mut self, name: &'static str, span: Span) -> PResult<()> {
        if let Some(&first) = self.settings.get(name) {
            let first = self.location(first, span);
            return Err(Diag::new(
                span,
                ErrorKind::AlreadySet {
                    option: format!("`{name}`"),
                    first,
                },
            ));
        }
        self.settings.insert(name, span);
        Ok(())
    }

    /// Where `span` is, as told in an error at `from`: `line N` in the same file,
    /// `file:line:column` in another.
    fn location(&self, span: Span, from: Span) -> String {
        if span.file == from.file {
            format!("line {}", span.line)
        } else {
            format!(
                "{}:{}:{}",
                self.files[span.file as usize].name, span.line, span.column
            )
        }
    }
}

/// An `InvalidValue` error.
fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> ErrorKind {
    ErrorKind::InvalidValue {
        what,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

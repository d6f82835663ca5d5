//! `table`, `pki` and `ca`: the named resources other directives refer to.

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::lexer::TokenKind;
use super::super::span::Span;
use super::super::types::{Ca, Dhe, Table, TableSource};
use super::cursor::{Cursor, PResult};
use super::{Parser, PkiDraft, invalid};

impl Parser<'_> {
    /// `table NAME file:/path | /path | db:/path | proc:/path | { … }`.
    pub(super) fn table(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("a table name")?;
        if name.is_empty() || name.contains(|ch: char| ch.is_whitespace() || ch == '<' || ch == '>')
        {
            return Err(Diag::new(
                name_span,
                invalid("table name", &name, "no spaces, `<` or `>`"),
            ));
        }
        let fresh = self.declare(ItemKind::Table, &name, name_span);
        let source = if c.peek_kind(&TokenKind::LBrace) {
            self.table_literal(c)?
        } else {
            let (value, at) =
                c.string("a table source: file:/path, db:/path, proc:/path or { … }")?;
            table_source(&value)
                .map_err(|reason| Diag::new(at, invalid("table source", &value, reason)))?
        };
        c.finish()?;
        if fresh {
            self.config.tables.push(Table { name, source, span });
        }
        Ok(())
    }

    /// `{ v1, v2 }` or `{ k1 = v1, k2 = v2 }`: the first entry decides which.
    fn table_literal(&mut self, c: &mut Cursor<'_>) -> PResult<TableSource> {
        let open = c.expect_kind(&TokenKind::LBrace, "`{`")?;
        let mut list = Vec::new();
        let mut map = Vec::new();
        loop {
            if c.at_end() {
                return Err(Diag::new(open, ErrorKind::UnclosedBrace));
            }
            if c.eat_kind(&TokenKind::RBrace).is_some() {
                break;
            }
            if c.eat_kind(&TokenKind::Comma).is_some() {
                continue;
            }
            let (key, at) = c.string("a table entry")?;
            let is_pair = c.eat_kind(&TokenKind::Equals).is_some();
            if (is_pair && !list.is_empty()) || (!is_pair && !map.is_empty()) {
                let reason = "a table is either a list of values or a list of key = value pairs";
                return Err(Diag::new(at, invalid("table entry", &key, reason)));
            }
            if is_pair {
                let (value, _) = c.string("a value after `=`")?;
                map.push((key, value));
            } else {
                list.push(key);
            }
        }
        Ok(if map.is_empty() {
            TableSource::List(list)
        } else {
            TableSource::Map(map)
        })
    }

    /// `pki NAME cert PATH | key PATH | dhe none|auto|legacy`, several per line allowed; the
    /// lines of one name are merged.
    pub(super) fn pki(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("a pki name")?;
        let name = host_like_name("pki name", &name, name_span)?;
        let index = match self.pkis.iter().position(|p| p.name == name) {
            Some(index) => index,
            None => {
                self.declare(ItemKind::Pki, &name, name_span);
                let draft = PkiDraft {
                    name: name.clone(),
                    cert: None,
                    key: None,
                    dhe: None,
                    span,
                    seq: self.seq,
                };
                self.pkis.push(draft);
                self.pkis.len() - 1
            }
        };
        loop {
            let (param, at) = c.keyword("cert, key or dhe", &["cert", "key", "dhe"])?;
            let draft = &self.pkis[index];
            let already = match param {
                "cert" => draft.cert.is_some(),
                "key" => draft.key.is_some(),
                _ => draft.dhe.is_some(),
            };
            if already {
                return Err(Diag::new(
                    at,
                    ErrorKind::Repeated(format!("`{param}` of pki \"{name}\"")),
                ));
            }
            let (value, value_span) = c.string(if param == "dhe" {
                "none, auto or legacy"
            } else {
                "a file name"
            })?;
            let draft = &mut self.pkis[index];
            match param {
                "cert" => draft.cert = Some(value),
                "key" => draft.key = Some(value),
                _ => {
                    draft.dhe = Some(match value.to_ascii_lowercase().as_str() {
                        "none" => Dhe::None,
                        "auto" => Dhe::Auto,
                        "legacy" => Dhe::Legacy,
                        _ => {
                            return Err(Diag::new(
                                value_span,
                                invalid("dhe", &value, "use none, auto or legacy"),
                            ));
                        }
                    });
                }
            }
            if c.at_end() {
                return Ok(());
            }
        }
    }

    /// `ca NAME cert PATH`.
    pub(super) fn ca(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (name, name_span) = c.name("a ca name")?;
        let name = host_like_name("ca name", &name, name_span)?;
        let fresh = self.declare(ItemKind::Ca, &name, name_span);
        c.expect("cert")?;
        let (cert, _) = c.string("a file name")?;
        c.finish()?;
        if fresh {
            self.config.cas.push(Ca { name, cert, span });
        }
        Ok(())
    }
}

impl Parser<'_> {
    /// Reads the name after a `pki` or `ca` option and records the reference.
    pub(super) fn certificate_ref(
        &mut self,
        c: &mut Cursor<'_>,
        kind: ItemKind,
    ) -> PResult<String> {
        let (what, expected) = match kind {
            ItemKind::Pki => ("pki name", "a pki name"),
            _ => ("ca name", "a ca name"),
        };
        let (name, span) = c.name(expected)?;
        let name = host_like_name(what, &name, span)?;
        self.refer(kind, &name, span);
        Ok(name)
    }
}

/// pki and ca names are host names (or `*`), compared without case: lowercased here, at the
/// definition and at every use alike.
fn host_like_name(what: &'static str, name: &str, span: Span) -> PResult<String> {
    let valid = name == "*"
        || (!name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            }));
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(Diag::new(
            span,
            invalid(what, name, "expected a host name or `*`"),
        ))
    }
}

fn table_source(value: &str) -> Result<TableSource, String> {
    if value.starts_with('/') {
        return Ok(TableSource::File(value.to_owned()));
    }
    let Some((backend, path)) = value.split_once(':') else {
        return Err("expected file:/path, db:/path, proc:/path, an absolute path or { … }".into());
    };
    let source = match backend {
        "file" => TableSource::File,
        "db" => TableSource::Db,
        "proc" => TableSource::Proc,
        _ => {
            return Err(format!(
                "unsupported backend \"{backend}\"; use file:, db: or proc:"
            ));
        }
    };
    if !path.starts_with('/') {
        return Err("the path must be absolute".into());
    }
    Ok(source(path.to_owned()))
}

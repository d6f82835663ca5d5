//! `match [conditions…] action NAME | reject`, and the value/table/regex arguments conditions
//! share with builtin filters.

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::lexer::TokenKind;
use super::super::span::Span;
use super::super::types::{Cond, Destination, Lookup, MatchDecision, MatchRule, Matcher, Origin};
use super::check::compile_regex;
use super::cursor::{Cursor, PResult};
use super::seen::Seen;
use super::{Parser, TableUse};

const WORDS: &[&str] = &[
    "from",
    "for",
    "tag",
    "tagged",
    "helo",
    "auth",
    "tls",
    "mail-from",
    "rcpt-to",
    "action",
    "reject",
];

const ORIGINS: &[&str] = &["any", "local", "socket", "src", "rdns", "auth", "mail-from"];

const DESTINATIONS: &[&str] = &["any", "local", "domain", "rcpt-to"];

impl Parser<'_> {
    pub(super) fn match_rule(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let mut rule = MatchRule::new(MatchDecision::Reject);
        rule.span = span;
        let mut seen = Seen::default();
        loop {
            let negated = c.eat_kind(&TokenKind::Bang).is_some();
            let (word, at) = c.keyword("a match condition, `action NAME` or `reject`", WORDS)?;
            if negated && matches!(word, "action" | "reject") {
                let context = format!("before `{word}`");
                return Err(Diag::new(
                    at,
                    ErrorKind::NotAllowed {
                        option: "`!`".into(),
                        context,
                    },
                ));
            }
            match word {
                "action" => {
                    let (name, span) = c.name("an action name")?;
                    self.refer(ItemKind::Action, &name, span);
                    rule.decision = MatchDecision::Action(name);
                    break;
                }
                "reject" => break,
                "from" => {
                    seen.once("from", at)?;
                    self.origin(c, negated, &mut rule, &mut seen)?;
                }
                "for" => {
                    seen.once("for", at)?;
                    self.destination(c, negated, &mut rule, &mut seen)?;
                }
                "tag" | "tagged" => {
                    seen.once("tag", at)?;
                    let test = self.matcher(c, "tag lookups")?;
                    rule.tag = Some(Cond { negated, test });
                }
                "helo" => {
                    seen.once(word, at)?;
                    let test = self.matcher(c, "helo lookups")?;
                    rule.helo = Some(Cond { negated, test });
                }
                "auth" => {
                    seen.once(word, at)?;
                    let test = self.optional_matcher(c, "auth lookups")?;
                    rule.auth = Some(Cond { negated, test });
                }
                "tls" => {
                    seen.once(word, at)?;
                    rule.tls = Some(Cond { negated, test: () });
                }
                "mail-from" => {
                    seen.once(word, at)?;
                    let test = self.matcher(c, "mail-from lookups")?;
                    rule.mail_from = Some(Cond { negated, test });
                }
                _ => {
                    seen.once("rcpt-to", at)?;
                    let test = self.matcher(c, "rcpt-to lookups")?;
                    rule.rcpt_to = Some(Cond { negated, test });
                }
            }
        }
        c.finish()?;
        self.config.rules.push(rule);
        Ok(())
    }

    /// After `from`. `from auth …` and `from mail-from …` are `from any` plus the condition.
    fn origin(
        &mut self,
        c: &mut Cursor<'_>,
        negated: bool,
        rule: &mut MatchRule,
        seen: &mut Seen,
    ) -> PResult<()> {
        let (word, at) = c.keyword("any, local, socket, src, rdns, auth or mail-from", ORIGINS)?;
        let test = match word {
            "any" => Origin::Any,
            "local" => Origin::Local,
            "socket" => Origin::Socket,
            "src" => Origin::Src(self.matcher(c, "from src lookups")?),
            "rdns" => Origin::Rdns(self.optional_matcher(c, "from rdns lookups")?),
            "auth" => {
                seen.once("auth", at)?;
                rule.auth = Some(Cond {
                    negated,
                    test: self.optional_matcher(c, "auth lookups")?,
                });
                rule.from = Cond {
                    negated: false,
                    test: Origin::Any,
                };
                return Ok(());
            }
            _ => {
                seen.once("mail-from", at)?;
                let test = self.matcher(c, "mail-from lookups")?;
                rule.mail_from = Some(Cond { negated, test });
                rule.from = Cond {
                    negated: false,
                    test: Origin::Any,
                };
                return Ok(());
            }
        };
        rule.from = Cond { negated, test };
        Ok(())
    }

    /// After `for`. `for rcpt-to …` is `for any` plus the condition.
    fn destination(
        &mut self,
        c: &mut Cursor<'_>,
        negated: bool,
        rule: &mut MatchRule,
        seen: &mut Seen,
    ) -> PResult<()> {
        let (word, at) = c.keyword("any, local, domain or rcpt-to", DESTINATIONS)?;
        let test = match word {
            "any" => Destination::Any,
            "local" => Destination::Local,
            "domain" => Destination::Domain(self.matcher(c, "for domain lookups")?),
            _ => {
                seen.once("rcpt-to", at)?;
                let test = self.matcher(c, "rcpt-to lookups")?;
                rule.rcpt_to = Some(Cond { negated, test });
                rule.to = Cond {
                    negated: false,
                    test: Destination::Any,
                };
                return Ok(());
            }
        };
        rule.to = Cond { negated, test };
        Ok(())
    }

    /// `VALUE | <table> | regex VALUE | regex <table>`.
    pub(super) fn matcher(&mut self, c: &mut Cursor<'_>, usage: &'static str) -> PResult<Matcher> {
        match self.optional_matcher(c, usage)? {
            Some(matcher) => Ok(matcher),
            None => Err(c.error("a value, <table> or regex …", &[])),
        }
    }

    /// A matcher if one follows, nothing when a keyword or the end comes next (`auth`, `rdns`).
    /// Literal regular expressions are compiled here, inline tables of them once the tables are
    /// all known.
    pub(super) fn optional_matcher(
        &mut self,
        c: &mut Cursor<'_>,
        usage: &'static str,
    ) -> PResult<Option<Matcher>> {
        let regex = c.eat("regex").is_some();
        if c.at_table_ref() || c.peek_kind(&TokenKind::LBrace) {
            let table_use = if regex {
                TableUse::regexes(usage)
            } else {
                TableUse::list(usage)
            };
            let table = self.table_arg(c, table_use)?;
            return Ok(Some(Matcher {
                regex,
                lookup: Lookup::Table(table),
            }));
        }
        if !c.at_string() {
            if regex {
                return Err(c.error("a value or <table> after `regex`", &[]));
            }
            return Ok(None);
        }
        let (value, span) = c.string("a value")?;
        if regex && let Err(reason) = compile_regex(&value) {
            self.diag(
                span,
                ErrorKind::Regex {
                    pattern: value.clone(),
                    reason,
                },
            );
        }
        Ok(Some(Matcher {
            regex,
            lookup: Lookup::Value(value),
        }))
    }
}

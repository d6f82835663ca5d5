//! Checks that need the whole configuration: references resolve to earlier definitions, chains
//! hold no chains and no process twice, inline tables fit their use, SRS has a key, every pki
//! has a certificate and a key.

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::suggest::closest;
use super::super::types::{FilterKind, Pki, TableSource};
use super::{BUILTIN_TABLES, Parser, Reference, Shape};

/// Compiles a regular expression as match rules and filters use it (case-insensitive), keeping
/// only the gist of the compiler's message (its own rendering spans several lines).
pub(super) fn compile_regex(pattern: &str) -> Result<(), String> {
    match regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
    {
        Ok(_) => Ok(()),
        Err(regex::Error::Syntax(message)) => {
            let gist = message
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "));
            Err(gist.unwrap_or(&message).to_owned())
        }
        Err(other) => Err(other.to_string()),
    }
}

impl Parser<'_> {
    pub(super) fn check(&mut self) {
        self.finish_pkis();
        let references = std::mem::take(&mut self.references);
        for reference in &references {
            self.check_reference(reference);
        }
        self.check_chains();
        if self.config.srs.key.is_none() {
            for (span, seq) in std::mem::take(&mut self.srs_uses) {
                let kind = ErrorKind::Requires {
                    option: "`srs`".into(),
                    requirement: "an `srs key` directive".into(),
                };
                self.diags.push(Diag { span, kind, seq });
            }
        }
    }

    fn finish_pkis(&mut self) {
        for draft in std::mem::take(&mut self.pkis) {
            let missing = match (&draft.cert, &draft.key) {
                (None, _) => "`cert`",
                (_, None) => "`key`",
                (Some(cert), Some(key)) => {
                    let (cert, key, dhe) =
                        (cert.clone(), key.clone(), draft.dhe.unwrap_or_default());
                    self.config.pkis.push(Pki {
                        name: draft.name,
                        cert,
                        key,
                        dhe,
                        span: draft.span,
                    });
                    continue;
                }
            };
            let what = format!("pki \"{}\"", draft.name);
            let kind = ErrorKind::Incomplete {
                what,
                missing: missing.into(),
            };
            self.diags.push(Diag {
                span: draft.span,
                kind,
                seq: draft.seq,
            });
        }
    }

    fn check_reference(&mut self, r: &Reference) {
        let report = |diags: &mut Vec<Diag>, kind| {
            diags.push(Diag {
                span: r.span,
                kind,
                seq: r.seq,
            })
        };
        let builtin = r.kind == ItemKind::Table && BUILTIN_TABLES.contains(&r.name.as_str());
        match self.declared.get(&(r.kind, r.name.clone())) {
            _ if builtin => {}
            None => {
                let mut names: Vec<&str> = self
                    .declared
                    .keys()
                    .filter(|(kind, _)| *kind == r.kind)
                    .map(|(_, name)| name.as_str())
                    .collect();
                if r.kind == ItemKind::Table {
                    names.extend(BUILTIN_TABLES);
                }
                // Sorted so that ties between equally close names always break the same way.
                names.sort_unstable();
                let suggestion = closest(&r.name, names).map(str::to_owned);
                report(
                    &mut self.diags,
                    ErrorKind::Undefined {
                        kind: r.kind,
                        name: r.name.clone(),
                        suggestion,
                    },
                );
                return;
            }
            Some(declared) if declared.seq > r.seq => {
                let defined_at = self.location(declared.span, r.span);
                report(
                    &mut self.diags,
                    ErrorKind::UsedBeforeDefinition {
                        kind: r.kind,
                        name: r.name.clone(),
                        defined_at,
                    },
                );
                return;
            }
            Some(_) => {}
        }
        let (Some(table_use), Some(table)) = (r.table_use, self.config.table(&r.name)) else {
            return;
        };
        let needs = match (&table.source, table_use.shape) {
            (TableSource::List(values), Shape::Map) if !values.is_empty() => "key = value pairs",
            (TableSource::Map(_), Shape::List | Shape::Regexes) => "a list of values",
            (TableSource::List(values), Shape::Regexes) => {
                let bad: Vec<(String, String)> = values
                    .iter()
                    .filter_map(|v| compile_regex(v).err().map(|reason| (v.clone(), reason)))
                    .collect();
                for (pattern, reason) in bad {
                    report(&mut self.diags, ErrorKind::Regex { pattern, reason });
                }
                return;
            }
            _ => return,
        };
        let kind = ErrorKind::TableShape {
            name: r.name.clone(),
            usage: table_use.usage,
            needs,
        };
        report(&mut self.diags, kind);
    }

    fn check_chains(&mut self) {
        for chain in std::mem::take(&mut self.chains) {
            // (proc, the member filter that runs it)
            let mut procs: Vec<(&str, &str)> = Vec::new();
            for (member, span) in &chain.members {
                let Some(filter) = self.config.filter(member) else {
                    continue;
                };
                let kind = match &filter.kind {
                    FilterKind::Chain(_) => ErrorKind::NestedChain(member.clone()),
                    FilterKind::Proc(proc_name) => match procs.iter().find(|(p, _)| p == proc_name)
                    {
                        Some(&(_, first)) => ErrorKind::DuplicateChainProc {
                            proc_name: proc_name.clone(),
                            first: first.to_owned(),
                            second: member.clone(),
                        },
                        None => {
                            procs.push((proc_name, member));
                            continue;
                        }
                    },
                    FilterKind::Builtin(_) | FilterKind::Greylist(_) | FilterKind::ProcExec(_) => {
                        continue;
                    }
                };
                self.diags.push(Diag {
                    span: *span,
                    kind,
                    seq: chain.seq,
                });
            }
        }
    }
}

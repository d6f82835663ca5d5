//! The typed configuration the parser produces.
//!
//! Named items (tables, actions, filters, …) keep their declaration order and the [`Span`] of the
//! directive that declared them. Defaults of spec §10 are filled in, so a consumer never has to
//! know them: [`SmtpOptions::default`] is what an empty configuration means.
//!
//! One module per family of directives, as in the parser: `resources` (tables, certificates,
//! processes), `filter`, `listener`, `action`, `rule` (match rules and the conditions they share
//! with filters), `settings` (global options, and room for Petrel's own).

mod action;
mod filter;
mod listener;
mod resources;
mod rule;
mod settings;

pub use action::*;
pub use filter::*;
pub use listener::*;
pub use resources::*;
pub use rule::*;
pub use settings::*;

use crate::config::span::Span;

/// A parsed smtpd.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The files the configuration was read from: the main file first, then each included file;
    /// [`Span::file`] indexes this list.
    pub files: Vec<String>,
    /// `table` declarations.
    pub tables: Vec<Table>,
    /// `pki` declarations (all `pki NAME …` lines of one name merged).
    pub pkis: Vec<Pki>,
    /// `ca` declarations.
    pub cas: Vec<Ca>,
    /// `proc` declarations.
    pub procs: Vec<Proc>,
    /// `filter` declarations.
    pub filters: Vec<Filter>,
    /// `mda wrapper` declarations.
    pub mda_wrappers: Vec<MdaWrapper>,
    /// `listen on` directives.
    pub listeners: Vec<Listener>,
    /// `action` declarations.
    pub actions: Vec<Action>,
    /// `match` rules, in evaluation order.
    pub rules: Vec<MatchRule>,
    /// `smtp …` settings.
    pub smtp: SmtpOptions,
    /// `queue …` settings.
    pub queue: QueueOptions,
    /// `bounce …` settings.
    pub bounce: BounceOptions,
    /// `srs …` settings.
    pub srs: SrsOptions,
    /// `mta …` settings.
    pub mta: MtaOptions,
    /// `scheduler limit …` settings.
    pub scheduler: SchedulerLimits,
    /// `admd NAME`: the authserv-id passed to filters; the server name when unset.
    pub admd: Option<String>,
    /// Petrel's own directives, which OpenSMTPD does not have.
    pub petrel: PetrelOptions,
}

impl Config {
    /// The table of that name.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The action of that name.
    #[must_use]
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The filter of that name.
    #[must_use]
    pub fn filter(&self, name: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.name == name)
    }

    /// The proc of that name.
    #[must_use]
    pub fn proc(&self, name: &str) -> Option<&Proc> {
        self.procs.iter().find(|p| p.name == name)
    }

    /// The pki of that name (names are lowercase).
    #[must_use]
    pub fn pki(&self, name: &str) -> Option<&Pki> {
        self.pkis.iter().find(|p| p.name == name)
    }

    /// The ca of that name (names are lowercase).
    #[must_use]
    pub fn ca(&self, name: &str) -> Option<&Ca> {
        self.cas.iter().find(|c| c.name == name)
    }

    /// The mda wrapper of that name.
    #[must_use]
    pub fn mda_wrapper(&self, name: &str) -> Option<&MdaWrapper> {
        self.mda_wrappers.iter().find(|w| w.name == name)
    }

    /// `file:line:column` of a span, for messages about this configuration at run time (a table
    /// file that cannot be opened, a filter that exits).
    #[must_use]
    pub fn location(&self, span: Span) -> String {
        let file = self
            .files
            .get(span.file as usize)
            .map_or("?", String::as_str);
        format!("{file}:{}:{}", span.line, span.column)
    }

    /// The same configuration with every span and file name cleared: two configurations are
    /// "the same" modulo spans when their `without_spans` are equal.
    #[must_use]
    pub fn without_spans(&self) -> Config {
        let mut config = self.clone();
        config.files.clear();
        let none = Span::default();
        config.tables.iter_mut().for_each(|x| x.span = none);
        config.pkis.iter_mut().for_each(|x| x.span = none);
        config.cas.iter_mut().for_each(|x| x.span = none);
        config.procs.iter_mut().for_each(|x| x.span = none);
        config.filters.iter_mut().for_each(|x| x.span = none);
        config.mda_wrappers.iter_mut().for_each(|x| x.span = none);
        config.listeners.iter_mut().for_each(|x| x.span = none);
        config.actions.iter_mut().for_each(|x| x.span = none);
        config.rules.iter_mut().for_each(|x| x.span = none);
        config.mta.limits.iter_mut().for_each(|x| x.span = none);
        config.petrel.resolver.span = none;
        config
    }
}

//! The case library: every server-side case, in report order.

pub mod extensions;
pub mod rfc5321;
pub mod smuggling;

use crate::case::{Case, Level};

/// Every server-side case.
#[must_use]
pub fn all() -> Vec<Case> {
    let mut v = rfc5321::cases();
    v.extend(extensions::cases());
    v.extend(smuggling::cases());
    v
}

/// What to run: every case, or those matching all the filters given.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Case ids starting with one of these (empty: any).
    pub ids: Vec<String>,
    /// Only these RFCs (empty: any).
    pub rfcs: Vec<u16>,
    /// Only these levels (empty: any).
    pub levels: Vec<Level>,
}

impl Filter {
    /// True when `case` passes the filter.
    #[must_use]
    pub fn matches(&self, case: &Case) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|p| case.id.starts_with(p.as_str())))
            && (self.rfcs.is_empty() || self.rfcs.contains(&case.rfc))
            && (self.levels.is_empty() || self.levels.contains(&case.level))
    }

    /// The cases of the library passing the filter.
    #[must_use]
    pub fn select(&self) -> Vec<Case> {
        all().into_iter().filter(|c| self.matches(c)).collect()
    }
}

//! From an MX answer to the ordered list of mail exchangers (RFC 5321 section 5.1, RFC 7505).

use super::dns::{DnsError, MxRecord, normalize_name};
use super::hop::{Hop, HopKind, TlsPolicy};
use super::plan::PlanError;
use super::shuffle::shuffle_runs;
use crate::config::Backup;
use crate::session::client::Protocol;

/// The standard SMTP port MX hosts listen on.
pub const SMTP_PORT: u16 = 25;

/// Acting as a backup MX (`relay backup [mx NAME]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackupMx {
    /// `backup`: our preference is that of the MX records naming one of our own names.
    Ours,
    /// `backup mx NAME`: our preference is that of the MX records naming NAME.
    Named(String),
}

impl BackupMx {
    /// The backup setting of a relay action.
    #[must_use]
    pub fn from_config(backup: &Backup) -> BackupMx {
        match &backup.mx {
            Some(name) => BackupMx::Named(name.clone()),
            None => BackupMx::Ours,
        }
    }
}

/// What MX delivery needs besides the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxOptions {
    /// Our own host names: an MX naming one of them is never a target (it would be a loop).
    pub local_names: Vec<String>,
    /// Acting as a backup MX: only exchangers preferred over ours are targets.
    pub backup: Option<BackupMx>,
    /// The TLS policy of every MX (see [`TlsPolicy::for_mx`]).
    pub tls: TlsPolicy,
    /// The port to connect to (25; a test or a closed network may choose another).
    pub port: u16,
}

impl Default for MxOptions {
    fn default() -> Self {
        MxOptions {
            local_names: Vec::new(),
            backup: None,
            tls: TlsPolicy::OPPORTUNISTIC,
            port: SMTP_PORT,
        }
    }
}

/// The mail exchangers of `domain`, most preferred first, given the answer to its MX query.
///
/// - Records are sorted by preference; equal preferences are shuffled with `seed`, so the
///   load spreads over them and one seed always gives the same order.
/// - No MX records (an empty answer): the domain itself is the implicit MX, preference 0.
/// - A null MX (RFC 7505: the only record is `.`): the domain accepts no mail, [`PlanError::NullMx`].
///   A `.` among other records is a misconfiguration; it is skipped.
/// - An exchanger that is one of our own names is dropped (sending to ourselves would loop).
/// - As a backup MX, only exchangers strictly preferred over ours (the lowest preference of
///   the records naming us, or the `backup mx NAME`) are kept. When the backup name is not
///   among the records, every exchanger is kept (RFC 5321: the rule applies when we find
///   ourselves in the list).
/// - Nothing left: [`PlanError::MailLoop`], we would be relaying to ourselves.
///
/// # Errors
/// [`PlanError::NoSuchDomain`] for NXDOMAIN, [`PlanError::DnsTemporary`] for a failure that
/// may go away, and the cases above.
pub fn mx_hops(
    domain: &str,
    answer: Result<Vec<MxRecord>, DnsError>,
    options: &MxOptions,
    seed: u64,
) -> Result<Vec<Hop>, PlanError> {
    let records = match answer {
        Ok(records) if !records.is_empty() => records,
        Ok(_) | Err(DnsError::NoData) => {
            return Ok(vec![mx_hop(&normalize_name(domain), 0, true, options)]);
        }
        Err(DnsError::NxDomain) => return Err(PlanError::NoSuchDomain),
        Err(DnsError::Temporary(why)) => return Err(PlanError::DnsTemporary(why)),
    };
    let mut records: Vec<(u16, String)> = records
        .into_iter()
        .map(|r| (r.preference, normalize_name(&r.exchange)))
        .collect();
    if let [(_, exchange)] = records.as_slice()
        && exchange.is_empty()
    {
        return Err(PlanError::NullMx);
    }
    records.retain(|(_, exchange)| !exchange.is_empty());
    // Sorting by (preference, name) first makes the shuffle independent of the answer's order.
    records.sort();
    // A name listed twice keeps its best preference.
    let mut seen = std::collections::HashSet::new();
    records.retain(|(_, exchange)| seen.insert(exchange.clone()));
    if let Some(ours) = backup_preference(&records, options) {
        records.retain(|(preference, _)| *preference < ours);
    }
    let local: Vec<String> = options
        .local_names
        .iter()
        .map(|n| normalize_name(n))
        .collect();
    records.retain(|(_, exchange)| !local.contains(exchange));
    if records.is_empty() {
        return Err(PlanError::MailLoop);
    }
    shuffle_runs(&mut records, |r| r.0, seed);
    Ok(records
        .into_iter()
        .map(|(preference, name)| mx_hop(&name, preference, false, options))
        .collect())
}

/// Our preference as a backup MX, if we are among the records.
fn backup_preference(records: &[(u16, String)], options: &MxOptions) -> Option<u16> {
    let names: Vec<String> = match options.backup.as_ref()? {
        BackupMx::Ours => options
            .local_names
            .iter()
            .map(|n| normalize_name(n))
            .collect(),
        BackupMx::Named(name) => vec![normalize_name(name)],
    };
    records
        .iter()
        .filter(|(_, exchange)| names.contains(exchange))
        .map(|(preference, _)| *preference)
        .min()
}

fn mx_hop(name: &str, preference: u16, implicit: bool, options: &MxOptions) -> Hop {
    Hop {
        name: name.to_owned(),
        kind: HopKind::Mx {
            preference,
            implicit,
        },
        address: None,
        port: options.port,
        tls: options.tls,
        protocol: Protocol::Smtp,
        auth_label: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(hops: &[Hop]) -> Vec<(&str, u16)> {
        hops.iter()
            .map(|h| (h.name.as_str(), h.preference().unwrap()))
            .collect()
    }

    fn mx(records: &[(u16, &str)]) -> Result<Vec<MxRecord>, DnsError> {
        Ok(records.iter().map(|(p, n)| MxRecord::new(*p, *n)).collect())
    }

    #[test]
    fn sorted_by_preference() {
        let hops = mx_hops(
            "example.org",
            mx(&[(20, "MX2.example.org."), (10, "mx1.example.org")]),
            &MxOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(
            names(&hops),
            [("mx1.example.org", 10), ("mx2.example.org", 20)]
        );
        assert_eq!(hops[0].port, 25);
    }

    #[test]
    fn no_mx_means_the_domain_itself() {
        for answer in [Err(DnsError::NoData), Ok(Vec::new())] {
            let hops = mx_hops("Example.ORG", answer, &MxOptions::default(), 0).unwrap();
            assert_eq!(hops.len(), 1);
            assert_eq!(hops[0].name, "example.org");
            assert_eq!(
                hops[0].kind,
                HopKind::Mx {
                    preference: 0,
                    implicit: true
                }
            );
        }
    }

    #[test]
    fn null_mx_and_dns_failures() {
        let o = MxOptions::default();
        assert_eq!(
            mx_hops("x.test", mx(&[(0, ".")]), &o, 0),
            Err(PlanError::NullMx)
        );
        assert_eq!(
            mx_hops("x.test", Err(DnsError::NxDomain), &o, 0),
            Err(PlanError::NoSuchDomain)
        );
        assert_eq!(
            mx_hops("x.test", Err(DnsError::Temporary("SERVFAIL".into())), &o, 0),
            Err(PlanError::DnsTemporary("SERVFAIL".into()))
        );
        // A `.` among real exchangers is skipped, not obeyed.
        let hops = mx_hops("x.test", mx(&[(0, "."), (10, "mx.x.test")]), &o, 0).unwrap();
        assert_eq!(names(&hops), [("mx.x.test", 10)]);
    }

    #[test]
    fn our_own_names_are_dropped() {
        let o = MxOptions {
            local_names: vec!["Me.Example.org".into()],
            ..MxOptions::default()
        };
        let hops = mx_hops(
            "example.org",
            mx(&[(10, "me.example.org."), (20, "other.example.org")]),
            &o,
            0,
        )
        .unwrap();
        assert_eq!(names(&hops), [("other.example.org", 20)]);
        assert_eq!(
            mx_hops("example.org", mx(&[(10, "me.example.org")]), &o, 0),
            Err(PlanError::MailLoop)
        );
    }

    #[test]
    fn backup_keeps_only_better_exchangers() {
        let records = [
            (10, "primary.example.org"),
            (10, "primary2.example.org"),
            (20, "backup.example.org"),
            (20, "peer.example.org"),
            (30, "last.example.org"),
        ];
        let o = MxOptions {
            local_names: vec!["backup.example.org".into()],
            backup: Some(BackupMx::Ours),
            ..MxOptions::default()
        };
        let hops = mx_hops("example.org", mx(&records), &o, 3).unwrap();
        assert!(hops.iter().all(|h| h.preference() == Some(10)));
        assert_eq!(hops.len(), 2);
        // `backup mx NAME` compares with NAME's preference, whatever our own names are.
        let o = MxOptions {
            backup: Some(BackupMx::Named("last.example.org".into())),
            ..MxOptions::default()
        };
        assert_eq!(
            mx_hops("example.org", mx(&records), &o, 3).unwrap().len(),
            4
        );
        // We are the best: nothing to relay to.
        let o = MxOptions {
            backup: Some(BackupMx::Named("primary.example.org".into())),
            ..MxOptions::default()
        };
        assert_eq!(
            mx_hops("example.org", mx(&records), &o, 3),
            Err(PlanError::MailLoop)
        );
        // Not among the records: every exchanger is kept.
        let o = MxOptions {
            backup: Some(BackupMx::Named("stranger.example.net".into())),
            ..MxOptions::default()
        };
        assert_eq!(
            mx_hops("example.org", mx(&records), &o, 3).unwrap().len(),
            5
        );
    }

    #[test]
    fn equal_preferences_are_shuffled_by_seed_only() {
        let records = [
            (10, "a.test"),
            (10, "b.test"),
            (10, "c.test"),
            (20, "z.test"),
        ];
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let one = mx_hops("d.test", mx(&records), &MxOptions::default(), seed).unwrap();
            let mut reversed = records;
            reversed.reverse();
            let two = mx_hops("d.test", mx(&reversed), &MxOptions::default(), seed).unwrap();
            assert_eq!(one, two, "the answer's order must not matter");
            assert_eq!(one[3].name, "z.test");
            firsts.insert(one[0].name.clone());
        }
        assert_eq!(firsts.len(), 3);
    }
}

//! Recipient resolution: from one `RCPT TO` to the list of deliveries it makes
//! (`lka_session.c`, `aliases.c`, `expand.c`, `forward.c`).
//!
//! [`Ruleset::resolve`] routes the recipient through the rules, expands it with its action's
//! alias or virtual table, users' `~/.forward` files and `:include:` files, routes every
//! address the expansion produces through the rules again as an internal (`from local`)
//! envelope, and so on until only deliveries are left: mail to relay, mailboxes of users,
//! files to append to, commands to pipe into. Either every part succeeds and the recipient is
//! accepted with all its deliveries, or the first failure refuses the whole recipient — with
//! the code and text OpenSMTPD gives, followed by `: <recipient>`.
//!
//! The expansion is breadth-first over a tree of nodes, as in OpenSMTPD:
//!
//! - an **address** is routed; a relay action delivers it; a local action with a `virtual`
//!   table looks it up (`user+tag@domain`, `user@domain`, `user+tag`, `user`, `@domain`, `@`)
//!   and fails with `524 5.2.4` when nothing is found; any other local action makes it a user;
//! - a **user** is looked up in the action's alias table (`user+tag`, then `user`) or virtual
//!   table (`user+tag`, `user`), unless it is the very user whose entry named it (`alice:
//!   alice, bob` delivers to alice); otherwise, its tag stripped, it must exist in the userbase
//!   (`550 Invalid recipient` if not), and its `~/.forward` is read — except when the action
//!   delivers as another `user`, and for the user a `.forward` names itself. Without a
//!   `.forward`, the user's mailbox gets the mail; an `expand-only` action refuses instead
//!   (`524`) and a `forward-only` one fails temporarily (`424`);
//! - **files** and **commands** run as the user whose `.forward` named them, or as the daemon
//!   for aliases and virtual entries; never from root's `.forward`, never with `forward-only`;
//! - an **error** item fails the recipient with its own code and text.
//!
//! A node already in the tree in the same context (same kind and value under the same address,
//! and for files and commands the same user) is not added again, so aliases that name each
//! other terminate; nodes deeper than 10 levels fail the recipient (`524 5.2.4 Mailing list
//! expansion problem`). A `.forward` file may not exceed 4 KiB nor bring the tree past 100
//! nodes.
//!
//! SRS: when `srs key` is set and the sender is `<>`, an address whose user part starts with
//! `SRS0=` or `SRS1=` is decoded and the original sender is routed instead, as an internal
//! envelope (OpenSMTPD 7).
//!
//! Where Petrel deviates from OpenSMTPD 7.8, on purpose:
//! - an expansion growing past [`MAX_TREE_NODES`] nodes fails temporarily (OpenSMTPD has no
//!   bound but the depth);
//! - an address that appears again among its own ancestors (`list: alice, list@here`) is
//!   dropped as a loop; OpenSMTPD expands it again until the depth limit refuses the recipient;
//! - an `:include:` file that cannot be read, or that has a malformed line, fails the recipient
//!   temporarily (OpenSMTPD skips it silently); include files are read like `.forward` files
//!   (`#` comments, `\` continuations);
//! - an SRS address that does not decode (forged hash, expired, malformed) and is not routed to
//!   a relay action is refused with the SRS reason (`550 5.7.1 Invalid SRS hash`) instead of
//!   going on as an unknown local user;
//! - a `.forward` that names its own user under an `expand-only` or `forward-only` action is
//!   refused at once (OpenSMTPD accepts it and the delivery, which has no method, fails later);
//! - replies carry enhanced status codes where OpenSMTPD's have none (`550 5.1.1 Invalid
//!   recipient` for an unknown user, `451 4.3.0 Temporary failure`).

use std::collections::{HashSet, VecDeque};
use std::fmt;

use super::address::MailAddr;
use super::alias::{self, AliasTarget};
use super::lookups::{ForwardFile, GETPWNAM, LookupError, Lookups, UserInfo};
use super::router::{INVALID_RECIPIENT, RouteContext, Ruleset, SessionFacts, TEMPORARY_FAILURE};
use super::service::Service;
use super::srs_route;
use crate::Time;
use crate::config::{self as cfg, Expansion, LocalMethod, MatchDecision};
use crate::smtp::{EnhancedCode, Reply};

/// Deepest level of the expansion tree (`EXPAND_DEPTH`).
pub const EXPAND_DEPTH: usize = 10;
/// A `.forward` file this large or larger fails temporarily (`MAX_FORWARD_SIZE`).
pub const MAX_FORWARD_SIZE: usize = 4 * 1024;
/// A `.forward` may not bring the expansion past this many nodes (`MAX_EXPAND_NODES`).
pub const MAX_EXPAND_NODES: usize = 100;
/// No expansion may grow past this many nodes (Petrel's own bound: aliases that fan out to
/// addresses which fan out again grow exponentially within the depth limit).
pub const MAX_TREE_NODES: usize = 4096;

/// `524 5.2.4 Mailing list expansion problem`: a permanent expansion failure.
pub const EXPANSION_FAILED: Reply = Reply::fixed(
    524,
    EnhancedCode::new(5, 2, 4),
    "Mailing list expansion problem",
);
/// `424 4.2.4 Mailing list expansion problem`: a temporary expansion failure.
pub const EXPANSION_DEFERRED: Reply = Reply::fixed(
    424,
    EnhancedCode::new(4, 2, 4),
    "Mailing list expansion problem",
);
/// `550 5.1.1 Invalid recipient`: no such user.
pub const UNKNOWN_USER: Reply = Reply::fixed(550, EnhancedCode::new(5, 1, 1), "Invalid recipient");

/// One recipient of a transaction, with what the rules test.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    /// The session the message comes from.
    pub session: &'a SessionFacts,
    /// The envelope sender ([`MailAddr::null`] for bounces).
    pub sender: &'a MailAddr,
    /// The recipient as given in `RCPT TO` (a bare `postmaster` completed with the server name).
    pub rcpt: &'a MailAddr,
}

/// One delivery a recipient resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The action that delivers it.
    pub action: String,
    /// The address it is delivered for: the recipient itself, or the address it expanded to
    /// last (`%{dest}`; an LMTP `rcpt-to` action sends it).
    pub dest: MailAddr,
    /// What is delivered where.
    pub target: Target,
}

/// What a delivery does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Relay to `dest` (a `relay` action).
    Relay,
    /// Deliver into a user's mailbox with the action's method.
    Mailbox {
        /// The user (`%{user.username}`, `%{user.directory}`).
        user: UserInfo,
        /// The `+tag` of the recipient, without the delimiter.
        subaddress: Option<String>,
        /// Whose identity the delivery runs with.
        run_as: RunAs,
    },
    /// Append to a file.
    File {
        /// The absolute path.
        path: String,
        /// Whose identity the delivery runs with.
        run_as: RunAs,
    },
    /// Pipe into a command.
    Command {
        /// The command line.
        command: String,
        /// Whose identity the delivery runs with.
        run_as: RunAs,
    },
}

/// Why a recipient is refused: the reply it gets and, for the log, what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The reply for the client, ending with `: <recipient>`.
    pub reply: Reply,
    /// What went wrong, in words for the log (the reply tells the client little on purpose).
    pub cause: String,
}

impl fmt::Display for Refusal {
    /// The reply, as the client sees it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reply, f)
    }
}

fn refuse(reply: Reply, cause: impl Into<String>) -> Refusal {
    Refusal {
        reply,
        cause: cause.into(),
    }
}

/// The identity a local delivery runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// The account of this user (uid and gid known).
    Account(UserInfo),
    /// The action's `user NAME`, an account the shell resolves at delivery time.
    User(String),
    /// The daemon's own unprivileged identity: files and commands from aliases and virtual
    /// tables, and users without a system account.
    Daemon,
}

impl Ruleset {
    /// Resolves one recipient into its deliveries, or the reply that refuses it. See the
    /// module documentation. `now` dates SRS addresses.
    ///
    /// # Errors
    /// The refusal of the recipient: 4xx when it may succeed later, 5xx when it never will.
    pub fn resolve(
        &self,
        recipient: &Recipient<'_>,
        lookups: &dyn Lookups,
        now: Time,
    ) -> Result<Vec<Delivery>, Refusal> {
        let mut expander = Expander {
            rules: self,
            lookups,
            recipient,
            now,
            nodes: Vec::new(),
            seen: HashSet::new(),
            queue: VecDeque::new(),
            deliveries: Vec::new(),
            internal: false,
        };
        expander.run().map_err(|Refusal { reply, cause }| {
            let rcpt = recipient.rcpt;
            let shown = if rcpt.domain.is_empty() {
                rcpt.user.clone()
            } else {
                rcpt.to_string()
            };
            let reply = Reply {
                text: format!("{}: <{shown}>", reply.text).into(),
                ..reply
            };
            Refusal { reply, cause }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Address(MailAddr),
    User(String),
    File(String),
    Command(String),
    Error(Reply),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    parent: Option<usize>,
    depth: usize,
    /// The action of the rule under which the node was produced (`None` for the recipient).
    action: Option<String>,
    /// A user named by its own alias or `.forward` entry.
    sameuser: bool,
    /// Set once the user was found in the userbase.
    realuser: Option<UserInfo>,
    /// Set once the user's `.forward` was asked for.
    forwarded: bool,
}

/// What makes two nodes the same (`expand_cmp`): kind and value, the `sameuser` mark, the
/// address they were expanded under, and for files and commands the user they run as.
#[derive(PartialEq, Eq, Hash)]
struct NodeKey {
    kind: Kind,
    sameuser: bool,
    context: Option<usize>,
    user: Option<usize>,
}

type Step = Result<(), Refusal>;

struct Expander<'r> {
    rules: &'r Ruleset,
    lookups: &'r dyn Lookups,
    recipient: &'r Recipient<'r>,
    now: Time,
    nodes: Vec<Node>,
    seen: HashSet<NodeKey>,
    queue: VecDeque<usize>,
    deliveries: Vec<Delivery>,
    /// Set once an SRS address decoded: everything after is internal (as OpenSMTPD replaces the
    /// session's envelope).
    internal: bool,
}

impl<'r> Expander<'r> {
    fn run(&mut self) -> Result<Vec<Delivery>, Refusal> {
        self.insert(Kind::Address(self.recipient.rcpt.clone()), None, None);
        while let Some(n) = self.queue.pop_front() {
            if self.nodes[n].depth >= EXPAND_DEPTH {
                return Err(refuse(
                    EXPANSION_FAILED,
                    format!("expansion deeper than {EXPAND_DEPTH} levels"),
                ));
            }
            if self.nodes.len() > MAX_TREE_NODES {
                return Err(refuse(
                    EXPANSION_DEFERRED,
                    format!("expansion larger than {MAX_TREE_NODES} nodes"),
                ));
            }
            match self.nodes[n].kind.clone() {
                Kind::Address(addr) => self.address(n, addr)?,
                Kind::User(name) => self.user(n, &name)?,
                Kind::File(path) => {
                    self.file_or_command(n, |run_as| Target::File { path, run_as })?;
                }
                Kind::Command(command) => {
                    self.file_or_command(n, |run_as| Target::Command { command, run_as })?;
                }
                Kind::Error(reply) => {
                    self.forbid_with_forward_only(n, "an error item")?;
                    return Err(refuse(reply, "error item"));
                }
            }
        }
        if self.deliveries.is_empty() {
            return Err(refuse(EXPANSION_FAILED, "expansion produced no delivery"));
        }
        Ok(std::mem::take(&mut self.deliveries))
    }

    /// Adds a node unless the same one is already in the tree; true when added.
    fn insert(&mut self, kind: Kind, parent: Option<usize>, action: Option<&str>) -> bool {
        let sameuser = matches!((&kind, parent.map(|p| &self.nodes[p].kind)),
            (Kind::User(name), Some(Kind::User(parent))) if name == parent);
        let ancestor = |want: &dyn Fn(&Kind) -> bool| {
            let mut at = parent;
            while let Some(p) = at {
                if want(&self.nodes[p].kind) {
                    return Some(p);
                }
                at = self.nodes[p].parent;
            }
            None
        };
        let context = ancestor(&|k| matches!(k, Kind::Address(_)));
        let user = match kind {
            Kind::File(_) | Kind::Command(_) => ancestor(&|k| matches!(k, Kind::User(_))),
            _ => None,
        };
        if let Kind::Address(addr) = &kind {
            let looped = ancestor(&|k| matches!(k, Kind::Address(a) if same_address(a, addr)));
            if looped.is_some() {
                return false;
            }
        }
        let key = NodeKey {
            kind: kind.clone(),
            sameuser,
            context,
            user,
        };
        if !self.seen.insert(key) {
            return false;
        }
        let depth = parent.map_or(0, |p| self.nodes[p].depth + 1);
        self.nodes.push(Node {
            kind,
            parent,
            depth,
            action: action.map(str::to_owned),
            sameuser,
            realuser: None,
            forwarded: false,
        });
        self.queue.push_back(self.nodes.len() - 1);
        true
    }

    /// The local action node `n` was produced under. Only local actions produce users,
    /// files, commands and errors, so the error is unreachable; it fails temporarily rather
    /// than panic.
    fn local(&self, n: usize) -> Result<(String, &'r cfg::LocalDelivery), Refusal> {
        let rules: &'r Ruleset = self.rules;
        let name = self.nodes[n].action.clone().unwrap_or_default();
        match rules.action(&name).map(|a| &a.delivery) {
            Some(cfg::Delivery::Local(local)) => Ok((name, local)),
            _ => Err(refuse(
                TEMPORARY_FAILURE,
                format!("{name:?} is not a local action"),
            )),
        }
    }

    fn address(&mut self, n: usize, mut addr: MailAddr) -> Step {
        let sender = self.recipient.sender;
        let mut srs_failure = None;
        if let Some(srs) = self.rules.srs() {
            match srs_route::decode_bounce(srs, sender, &addr, self.now) {
                None => {}
                Some(Ok(decoded)) => {
                    addr = decoded;
                    self.nodes[n].kind = Kind::Address(addr.clone());
                    self.internal = true;
                }
                Some(Err(e)) => srs_failure = Some(e),
            }
        }
        let ctx = RouteContext {
            session: self.recipient.session,
            sender,
            rcpt: &addr,
            internal: self.internal || self.nodes[n].parent.is_some(),
        };
        let rules: &'r Ruleset = self.rules;
        let name = match rules.decide(&ctx, self.lookups) {
            Ok(Some(MatchDecision::Action(name))) => name.clone(),
            Ok(decision) => {
                return Err(match srs_failure {
                    Some(e) => refuse(srs_route::refusal(&e), format!("SRS: {e}")),
                    None if decision.is_some() => {
                        refuse(INVALID_RECIPIENT, format!("{addr} rejected by a rule"))
                    }
                    None => refuse(INVALID_RECIPIENT, format!("no rule matched {addr}")),
                });
            }
            Err(e) => return Err(refuse(TEMPORARY_FAILURE, format!("routing {addr}: {e}"))),
        };
        let Some(action) = rules.action(&name) else {
            return Err(refuse(TEMPORARY_FAILURE, format!("no action {name:?}")));
        };
        let local = match &action.delivery {
            cfg::Delivery::Relay(_) => {
                self.deliveries.push(Delivery {
                    action: name,
                    dest: addr,
                    target: Target::Relay,
                });
                return Ok(());
            }
            cfg::Delivery::Local(local) => local,
        };
        if let Some(e) = srs_failure {
            return Err(refuse(srs_route::refusal(&e), format!("SRS: {e}")));
        }
        match &local.expansion {
            Some(Expansion::Virtual(table)) => {
                match self.virtual_get(n, &name, table, &addr.lowercased_user()) {
                    Err(e) => Err(refuse(EXPANSION_DEFERRED, e.to_string())),
                    Ok(0) => Err(refuse(
                        EXPANSION_FAILED,
                        format!("no entry for {addr} in <{table}>"),
                    )),
                    Ok(_) => Ok(()),
                }
            }
            _ => {
                self.insert(
                    Kind::User(addr.user.to_ascii_lowercase()),
                    Some(n),
                    Some(&name),
                );
                Ok(())
            }
        }
    }

    fn user(&mut self, n: usize, name: &str) -> Step {
        let (action, local) = self.local(n)?;
        if !self.nodes[n].sameuser && local.expansion.is_some() {
            let found = match &local.expansion {
                Some(Expansion::Alias(t)) => self.alias_get(n, &action, t, name),
                Some(Expansion::Virtual(t)) => {
                    self.virtual_get(n, &action, t, &MailAddr::new(name, ""))
                }
                None => Ok(0),
            };
            match found {
                Err(e) => return Err(refuse(EXPANSION_DEFERRED, e.to_string())),
                Ok(0) => {}
                Ok(_) => return Ok(()),
            }
        }
        let delim = self.rules.sub_addr_delim();
        let (user, subaddress) = match name.split_once(delim) {
            Some((user, tag)) => (user, Some(tag.to_owned()).filter(|t| !t.is_empty())),
            None => (name, None),
        };
        let info = match self.userinfo(local, user) {
            Err(e) => return Err(refuse(TEMPORARY_FAILURE, e.to_string())),
            Ok(None) => return Err(refuse(UNKNOWN_USER, format!("no user {user:?}"))),
            Ok(Some(info)) => info,
        };
        self.nodes[n].realuser = Some(info.clone());
        let parent_forwarded = self.nodes[n]
            .parent
            .is_some_and(|p| self.nodes[p].forwarded);
        let other_user = local.user.as_deref().is_some_and(|u| u != user);
        if (self.nodes[n].sameuser && parent_forwarded) || other_user {
            return self.mailbox(n, &action, local, info, subaddress);
        }
        self.nodes[n].forwarded = true;
        let text = match self.lookups.forward(&info) {
            Err(e) => return Err(refuse(EXPANSION_DEFERRED, e.to_string())),
            Ok(ForwardFile::Refused(why)) => {
                return Err(refuse(
                    EXPANSION_FAILED,
                    format!("{user}'s .forward: {why}"),
                ));
            }
            Ok(ForwardFile::Missing) => None,
            Ok(ForwardFile::Contents(text)) => Some(text),
        };
        let expanded = match text {
            Some(text) if text.len() >= MAX_FORWARD_SIZE => {
                return Err(refuse(
                    EXPANSION_DEFERRED,
                    format!("{user}'s .forward is {MAX_FORWARD_SIZE} bytes or more"),
                ));
            }
            Some(text) => self.forward_get(n, &action, &text)?,
            None => 0,
        };
        if expanded > 0 {
            return Ok(());
        }
        self.mailbox(n, &action, local, info, subaddress)
    }

    fn mailbox(
        &mut self,
        n: usize,
        action: &str,
        local: &cfg::LocalDelivery,
        user: UserInfo,
        subaddress: Option<String>,
    ) -> Step {
        // These actions have no mailbox to deliver to: the user had to expand to something.
        match local.method {
            LocalMethod::ExpandOnly => {
                return Err(refuse(
                    EXPANSION_FAILED,
                    format!("{} does not expand (expand-only)", user.name),
                ));
            }
            LocalMethod::ForwardOnly => {
                return Err(refuse(
                    EXPANSION_DEFERRED,
                    format!("{} does not forward (forward-only)", user.name),
                ));
            }
            _ => {}
        }
        let run_as = match &local.user {
            Some(u) => RunAs::User(u.clone()),
            None if user.uid.is_some() => RunAs::Account(user.clone()),
            None => RunAs::Daemon,
        };
        let dest = self.dest_of(n);
        self.deliveries.push(Delivery {
            action: action.to_owned(),
            dest,
            target: Target::Mailbox {
                user,
                subaddress,
                run_as,
            },
        });
        Ok(())
    }

    fn forbid_with_forward_only(&self, n: usize, what: &str) -> Step {
        if self.local(n)?.1.method == LocalMethod::ForwardOnly {
            return Err(refuse(
                TEMPORARY_FAILURE,
                format!("{what} in a forward-only expansion"),
            ));
        }
        Ok(())
    }

    fn file_or_command(&mut self, n: usize, target: impl FnOnce(RunAs) -> Target) -> Step {
        let parent_user = self.nodes[n]
            .parent
            .and_then(|p| self.nodes[p].realuser.clone());
        if parent_user.as_ref().is_some_and(|u| u.uid == Some(0)) {
            // 7.5: no files or commands from root's .forward.
            return Err(refuse(
                TEMPORARY_FAILURE,
                "file or command in root's .forward",
            ));
        }
        self.forbid_with_forward_only(n, "a file or command")?;
        let (action, local) = self.local(n)?;
        let run_as = match (&local.user, parent_user) {
            (Some(u), _) => RunAs::User(u.clone()),
            (None, Some(user)) if user.uid.is_some() => RunAs::Account(user),
            _ => RunAs::Daemon,
        };
        let dest = self.dest_of(n);
        self.deliveries.push(Delivery {
            action,
            dest,
            target: target(run_as),
        });
        Ok(())
    }

    /// The nearest address above `n`: what the delivery is for.
    fn dest_of(&self, n: usize) -> MailAddr {
        let mut at = Some(n);
        while let Some(i) = at {
            if let Kind::Address(a) = &self.nodes[i].kind {
                return a.clone();
            }
            at = self.nodes[i].parent;
        }
        self.recipient.rcpt.clone()
    }

    fn userinfo(
        &self,
        local: &cfg::LocalDelivery,
        name: &str,
    ) -> Result<Option<UserInfo>, LookupError> {
        match local.userbase.as_deref() {
            None | Some(GETPWNAM) => self.lookups.user(name),
            Some(table) => match self.lookups.lookup(table, Service::Userinfo, name)? {
                None => Ok(None),
                Some(value) => UserInfo::from_table_value(name, &value)
                    .map(Some)
                    .ok_or_else(|| LookupError::Backend {
                        table: table.to_owned(),
                        reason: format!("malformed userinfo for {name:?}: {value:?}"),
                    }),
            },
        }
    }

    /// `aliases_get`: the alias entry of `name`, tag first. The number of items found.
    fn alias_get(
        &mut self,
        n: usize,
        action: &str,
        table: &str,
        name: &str,
    ) -> Result<usize, LookupError> {
        let key = name.to_ascii_lowercase();
        let delim = self.rules.sub_addr_delim();
        let mut keys = Vec::new();
        if let Some((user, _)) = key.split_once(delim) {
            keys.push(key.clone());
            keys.push(user.to_owned());
        } else {
            keys.push(key);
        }
        self.expand_first(n, action, table, &keys)
    }

    /// `aliases_virtual_get`: the virtual entry of `addr`, most specific key first.
    fn virtual_get(
        &mut self,
        n: usize,
        action: &str,
        table: &str,
        addr: &MailAddr,
    ) -> Result<usize, LookupError> {
        let delim = self.rules.sub_addr_delim();
        let user = addr.user.to_ascii_lowercase();
        let domain = addr.domain.to_ascii_lowercase();
        let (user, tag) = match user.split_once(delim) {
            Some((u, t)) => (u.to_owned(), t.to_owned()),
            None => (user, String::new()),
        };
        let mut keys = Vec::new();
        if !tag.is_empty() {
            keys.push(format!("{user}{delim}{tag}@{domain}"));
        }
        keys.push(format!("{user}@{domain}"));
        if !tag.is_empty() {
            keys.push(format!("{user}{delim}{tag}"));
        }
        keys.push(user);
        if !domain.is_empty() {
            keys.push(format!("@{domain}"));
            keys.push("@".to_owned());
        }
        self.expand_first(n, action, table, &keys)
    }

    /// Expands the value of the first of `keys` the table has under node `n`.
    fn expand_first(
        &mut self,
        n: usize,
        action: &str,
        table: &str,
        keys: &[String],
    ) -> Result<usize, LookupError> {
        for key in keys {
            if let Some(value) = self.lookups.lookup(table, Service::Alias, key)? {
                let targets = alias::parse_targets(&value).map_err(|e| LookupError::Backend {
                    table: table.to_owned(),
                    reason: format!("{key}: {e}"),
                })?;
                return self.merge(n, action, targets);
            }
        }
        Ok(0)
    }

    /// Inserts an entry's targets under `n`, reading includes; the number of items, counting
    /// an include as one (as `aliases.c` does).
    fn merge(
        &mut self,
        n: usize,
        action: &str,
        targets: Vec<AliasTarget>,
    ) -> Result<usize, LookupError> {
        let mut count = 0;
        for target in targets {
            if let AliasTarget::Include(path) = target {
                let text = self.lookups.include(&path)?;
                for line in logical_lines(&text) {
                    let items = alias::parse_targets(&line).map_err(|e| LookupError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                    for item in items {
                        // Includes do not nest.
                        if let Some(kind) = kind_of(item) {
                            self.insert(kind, Some(n), Some(action));
                        }
                    }
                }
            } else if let Some(kind) = kind_of(target) {
                self.insert(kind, Some(n), Some(action));
            }
            count += 1;
        }
        Ok(count)
    }

    /// `forwards_get`: the items of a `.forward` under user node `n`; the number of nodes
    /// added.
    fn forward_get(&mut self, n: usize, action: &str, text: &str) -> Result<usize, Refusal> {
        let mut added = 0;
        for line in logical_lines(text) {
            let items = alias::parse_targets(&line)
                .map_err(|e| refuse(EXPANSION_DEFERRED, format!(".forward: {e}")))?;
            for item in items {
                if let Some(kind) = kind_of(item)
                    && self.insert(kind, Some(n), Some(action))
                {
                    added += 1;
                }
            }
            if self.nodes.len() > MAX_EXPAND_NODES {
                return Err(refuse(
                    EXPANSION_DEFERRED,
                    format!(".forward expands past {MAX_EXPAND_NODES} nodes"),
                ));
            }
        }
        Ok(added)
    }
}

/// The node for a target; includes are handled by the caller (or ignored where not allowed).
fn kind_of(target: AliasTarget) -> Option<Kind> {
    Some(match target {
        AliasTarget::User(name) => Kind::User(name),
        AliasTarget::Address(addr) => Kind::Address(addr),
        AliasTarget::File(path) => Kind::File(path),
        AliasTarget::Command(cmd) => Kind::Command(cmd),
        AliasTarget::Error(reply) => Kind::Error(reply),
        AliasTarget::Include(_) => return None,
    })
}

fn same_address(a: &MailAddr, b: &MailAddr) -> bool {
    a.user.eq_ignore_ascii_case(&b.user) && a.domain.eq_ignore_ascii_case(&b.domain)
}

/// Lines as `fparseln` gives them: a `\` at the end of a line joins the next one, an
/// unescaped `#` starts a comment; other escapes are left for the value parser.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let mut escaped = false;
        let mut continued = false;
        let mut out = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if escaped {
                out.push(c);
                escaped = false;
                continue;
            }
            match c {
                '\\' if chars.peek().is_none() => continued = true,
                '\\' => {
                    out.push(c);
                    escaped = true;
                }
                '#' => break,
                _ => out.push(c),
            }
        }
        current.push_str(&out);
        if !continued {
            lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;

//! Every format specifier, modifier, substring form, sanitising rule and error of
//! `petrel_core::expand`, with the examples of `smtpd.conf(5)`.

use petrel_core::expand::{
    ExpandContext, ExpandError, MailAddr, Template, Variable, expand, validate,
};

fn ctx() -> ExpandContext {
    ExpandContext {
        sender: MailAddr::new("Alice+news", "Example.NET"),
        rcpt: MailAddr::new("User+Tag", "Example.org"),
        dest: MailAddr::new("user", "mail.example.org"),
        user_name: "vmail".into(),
        user_directory: "/home/vmail".into(),
        mda: None,
    }
}

fn with_rcpt(user: &str, domain: &str) -> ExpandContext {
    ExpandContext {
        rcpt: MailAddr::new(user, domain),
        ..ctx()
    }
}

fn x(template: &str) -> String {
    x_in(template, &ctx())
}

fn x_in(template: &str, ctx: &ExpandContext) -> String {
    expand(template, ctx, '+').unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn err(template: &str) -> ExpandError {
    expand(template, &ctx(), '+').unwrap_err()
}

#[test]
fn every_variable() {
    assert_eq!(x("%{sender}"), "Alice+news@Example.NET");
    assert_eq!(x("%{sender.user}"), "Alice+news");
    assert_eq!(x("%{sender.domain}"), "Example.NET");
    assert_eq!(x("%{rcpt}"), "User+Tag@Example.org");
    assert_eq!(x("%{rcpt.user}"), "User+Tag");
    assert_eq!(x("%{rcpt.domain}"), "Example.org");
    assert_eq!(x("%{dest}"), "user@mail.example.org");
    assert_eq!(x("%{dest.user}"), "user");
    assert_eq!(x("%{dest.domain}"), "mail.example.org");
    assert_eq!(x("%{user.username}"), "vmail");
    assert_eq!(x("%{user.directory}"), "/home/vmail");
    assert_eq!(x("%{mbox.from}"), "Alice+news@Example.NET");
    let wrapper = ExpandContext {
        mda: Some("/usr/bin/procmail -f -".into()),
        ..ctx()
    };
    assert_eq!(x_in("%{mda}", &wrapper), "/usr/bin/procmail -f -");
}

#[test]
fn case_is_kept_unless_a_modifier_folds_it() {
    // OpenSMTPD lower-cases the local part for the user lookup only, never in expansions.
    assert_eq!(x("%{rcpt.user}/%{rcpt.domain}"), "User+Tag/Example.org");
    assert_eq!(
        x("%{rcpt.user:lowercase}/%{rcpt.domain:lowercase}"),
        "user+tag/example.org"
    );
}

#[test]
fn variable_and_modifier_names_ignore_case() {
    assert_eq!(x("%{RCPT.User:LowerCase|STRIP}"), "user");
    assert_eq!(x("%{Rcpt:Strip|UPPERCASE}"), "USER@EXAMPLE.ORG");
}

#[test]
fn bounces_have_an_empty_sender() {
    let bounce = ExpandContext {
        sender: MailAddr::default(),
        ..ctx()
    };
    assert_eq!(
        x_in("[%{sender}][%{sender.user}][%{sender.domain}]", &bounce),
        "[][][]"
    );
    assert_eq!(x_in("%{mbox.from}", &bounce), "MAILER-DAEMON");
    assert_eq!(
        x_in("%{sender[0:3]}", &bounce),
        "",
        "substrings of empty values never fail"
    );
}

#[test]
fn half_empty_addresses_keep_their_at_sign() {
    let local_only = with_rcpt("postmaster", "");
    assert_eq!(x_in("%{rcpt}", &local_only), "postmaster@");
    assert_eq!(
        MailAddr::parse("postmaster"),
        MailAddr::new("postmaster", "")
    );
    assert_eq!(
        MailAddr::parse("a@b@c.example"),
        MailAddr::new("a@b", "c.example")
    );
    assert_eq!(MailAddr::parse("").to_string(), "");
}

#[test]
fn manual_modifier_examples() {
    // smtpd.conf(5), with recipient "User+Tag@Example.org".
    assert_eq!(x("%{rcpt:lowercase}"), "user+tag@example.org");
    assert_eq!(x("%{rcpt:uppercase}"), "USER+TAG@EXAMPLE.ORG");
    assert_eq!(x("%{rcpt:strip}"), "User@Example.org");
    assert_eq!(x("%{rcpt:lowercase|strip}"), "user@example.org");
}

#[test]
fn modifiers_apply_left_to_right() {
    assert_eq!(x("%{sender.user:strip|uppercase}"), "ALICE");
    assert_eq!(x("%{rcpt.user:uppercase|lowercase}"), "user+tag");
    assert_eq!(x("%{dest.domain:strip}"), "mail.example.org");
}

#[test]
fn strip_uses_the_given_delimiter() {
    let ctx = with_rcpt("john-lists", "my-domain.example");
    assert_eq!(
        expand("%{rcpt:strip}", &ctx, '-').unwrap(),
        "john@my-domain.example"
    );
    assert_eq!(expand("%{rcpt.user:strip}", &ctx, '-').unwrap(), "john");
    assert_eq!(
        expand("%{rcpt.domain:strip}", &ctx, '-').unwrap(),
        "my-domain.example"
    );
    assert_eq!(
        expand("%{rcpt:strip}", &ctx, '+').unwrap(),
        "john-lists@my-domain.example"
    );
}

#[test]
fn manual_raw_example() {
    let ctx = with_rcpt("user+t?g", "example.org");
    assert_eq!(x_in("%{rcpt}", &ctx), "user+t:g@example.org");
    assert_eq!(x_in("%{rcpt:raw}", &ctx), "user+t?g@example.org");
    assert_eq!(x_in("%{rcpt:raw|uppercase}", &ctx), "USER+T?G@EXAMPLE.ORG");
    assert_eq!(x_in("%{rcpt:uppercase|raw}", &ctx), "USER+T?G@EXAMPLE.ORG");
}

#[test]
fn manual_substring_examples() {
    let ctx = with_rcpt("user", "example.org");
    assert_eq!(x_in("%{rcpt.domain[0]}", &ctx), "e");
    assert_eq!(x_in("%{rcpt.domain[1]}", &ctx), "x");
    assert_eq!(x_in("%{rcpt.domain[8:]}", &ctx), "org");
    assert_eq!(x_in("%{rcpt.domain[-3:]}", &ctx), "org");
    assert_eq!(x_in("%{rcpt.domain[0:6]}", &ctx), "example");
    assert_eq!(x_in("%{rcpt.domain[0:-4]}", &ctx), "example");
}

#[test]
fn other_substring_forms() {
    let ctx = with_rcpt("user", "example.org");
    assert_eq!(x_in("%{rcpt.domain[:2]}", &ctx), "exa");
    assert_eq!(x_in("%{rcpt.domain[:]}", &ctx), "example.org");
    assert_eq!(x_in("%{rcpt.domain[-1]}", &ctx), "g");
    assert_eq!(x_in("%{rcpt.domain[3:100]}", &ctx), "mple.org");
    // A typical hashed maildir layout.
    assert_eq!(
        x_in(
            "/var/mail/%{rcpt.user[0]}/%{rcpt.user[0:1]}/%{rcpt.user}",
            &ctx
        ),
        "/var/mail/u/us/user"
    );
}

#[test]
fn substrings_combine_with_modifiers() {
    // OpenSMTPD cannot parse this combination (it fails the delivery); Petrel applies both.
    assert_eq!(x("%{rcpt.user[0]:lowercase}"), "u");
    assert_eq!(x("%{rcpt[0:3]:uppercase|strip}"), "USER");
    // The substring counts what the modifiers left.
    assert_eq!(x("%{rcpt[-3:]:strip}"), "org");
    assert_eq!(x("%{rcpt[0:4]:strip}"), "User@");
}

#[test]
fn substrings_apply_after_sanitising() {
    let ctx = with_rcpt("a/b", "example.org");
    assert_eq!(x_in("%{rcpt.user[1]}", &ctx), ":");
    assert_eq!(x_in("%{rcpt.user[1]:raw}", &ctx), "/");
}

#[test]
fn home_directory_prefix() {
    assert_eq!(x("~/Maildir"), "/home/vmail/Maildir");
    assert_eq!(x("~/%{rcpt.user:lowercase|strip}"), "/home/vmail/user");
    // Only at the very start, as in a shell word.
    assert_eq!(x("/x/~/y"), "/x/~/y");
    assert_eq!(x("~user/Maildir"), "~user/Maildir");
    assert!(
        Template::parse("~/Maildir")
            .unwrap()
            .uses(Variable::UserDirectory)
    );
}

#[test]
fn percent_signs() {
    assert_eq!(x("%%{rcpt}"), "%{rcpt}");
    assert_eq!(x("100%% %{dest.user}"), "100% user");
    assert_eq!(x("50%"), "50%");
    assert_eq!(x("%x%"), "%x%");
    assert_eq!(x("%%%{dest.user}"), "%user");
    assert_eq!(x("no specifiers at all"), "no specifiers at all");
    assert_eq!(x(""), "");
}

#[test]
fn values_are_not_expanded_again() {
    let ctx = with_rcpt("%{dest}", "example.org");
    assert_eq!(x_in("%{rcpt.user:raw}", &ctx), "%{dest}");
    assert_eq!(x_in("%{rcpt.user}", &ctx), "::dest:");
    let wrapper = ExpandContext {
        mda: Some("deliver %{rcpt}".into()),
        ..ctx
    };
    assert_eq!(x_in("wrap %{mda}", &wrapper), "wrap deliver %{rcpt}");
}

#[test]
fn realistic_templates() {
    let ctx = ctx();
    assert_eq!(
        x_in(
            "/var/vmail/%{dest.domain:lowercase}/%{dest.user:lowercase|strip}/Maildir",
            &ctx
        ),
        "/var/vmail/mail.example.org/user/Maildir"
    );
    assert_eq!(
        x_in(
            "/usr/local/libexec/dovecot/dovecot-lda -f %{sender} -a %{rcpt}",
            &ctx
        ),
        "/usr/local/libexec/dovecot/dovecot-lda -f Alice+news@Example.NET -a User+Tag@Example.org"
    );
}

#[test]
fn sanitising_replaces_unsafe_characters() {
    let cases = [
        ("../../etc/passwd", "::::::etc:passwd"),
        ("..", "::"),
        (".", ":"),
        ("a..b", "a::b"),
        ("first.last", "first.last"),
        ("$(reboot)", "::reboot:"),
        ("`id`;ls|sh&", ":id::ls:sh:"),
        ("x y\tz\n", "x:y:z:"),
        ("quote\"'", "quote::"),
        ("tilde~star*q?", "tilde:star:q:"),
        ("hat^back\\slash", "hat:back:slash"),
        ("jürgen", "jürgen"),
        (
            "SRS0=Hy2-=G3=example.org=alice",
            "SRS0=Hy2-=G3=example.org=alice",
        ),
    ];
    for (user, expected) in cases {
        assert_eq!(
            x_in("%{rcpt.user}", &with_rcpt(user, "example.org")),
            expected,
            "{user:?}"
        );
        assert_eq!(
            x_in("%{rcpt.user:raw}", &with_rcpt(user, "example.org")),
            user
        );
    }
}

#[test]
fn sanitising_covers_every_peer_supplied_variable() {
    let evil = MailAddr::new("../x", "../y");
    let ctx = ExpandContext {
        sender: evil.clone(),
        rcpt: evil.clone(),
        dest: evil,
        user_name: "../z".into(),
        ..ctx()
    };
    for v in Variable::ALL.into_iter().filter(|v| v.is_sanitised()) {
        let out = x_in(&format!("%{{{}}}", v.name()), &ctx);
        assert!(!out.contains('/') && !out.contains(".."), "{v}: {out}");
    }
}

#[test]
fn configuration_values_are_not_sanitised() {
    let ctx = ExpandContext {
        user_directory: "/home/odd name".into(),
        mda: Some("/usr/bin/procmail -a \"$EXTENSION\"".into()),
        ..ctx()
    };
    assert_eq!(x_in("%{user.directory}", &ctx), "/home/odd name");
    assert_eq!(x_in("%{mda}", &ctx), "/usr/bin/procmail -a \"$EXTENSION\"");
    assert!(!Variable::UserDirectory.is_sanitised() && !Variable::Mda.is_sanitised());
}

#[test]
fn unterminated_specifier() {
    assert_eq!(err("/var/%{rcpt"), ExpandError::Unterminated { offset: 5 });
    assert_eq!(err("%{"), ExpandError::Unterminated { offset: 0 });
    assert_eq!(
        err("~/ok/%{rcpt}/%{dest"),
        ExpandError::Unterminated { offset: 13 }
    );
}

#[test]
fn unknown_variable() {
    let unknown = |name: &str, offset| ExpandError::UnknownVariable {
        name: name.into(),
        offset,
    };
    assert_eq!(err("/m/%{recipient}"), unknown("recipient", 3));
    assert_eq!(err("%{}"), unknown("", 0));
    assert_eq!(err("%{ rcpt}"), unknown(" rcpt", 0));
    assert_eq!(err("%{rcpt.user]}"), unknown("rcpt.user]", 0));
    assert_eq!(err("%{a%{rcpt}}"), unknown("a%{rcpt", 0));
}

#[test]
fn bad_substring() {
    for (template, spec) in [
        ("%{rcpt[]}", "]"),
        ("%{rcpt[x]}", "x]"),
        ("%{rcpt[1:2:3]}", "1:2:3]"),
        ("%{rcpt[+1]}", "+1]"),
        ("%{rcpt[ 1]}", " 1]"),
        ("%{rcpt[1}", "1"),
        ("%{rcpt[0]x}", "0]x"),
        ("%{rcpt[0][1]}", "0][1]"),
    ] {
        assert_eq!(
            err(template),
            ExpandError::BadSubstring {
                spec: spec.into(),
                offset: 0
            },
            "{template}"
        );
    }
}

#[test]
fn unknown_modifier() {
    let unknown = |name: &str| ExpandError::UnknownModifier {
        name: name.into(),
        offset: 2,
    };
    assert_eq!(err("a %{rcpt:lower}"), unknown("lower"));
    assert_eq!(err("a %{rcpt:}"), unknown(""));
    assert_eq!(err("a %{rcpt:lowercase|}"), unknown(""));
    assert_eq!(err("a %{rcpt:lowercase,strip}"), unknown("lowercase,strip"));
    assert_eq!(err("a %{rcpt:lowercase[0]}"), unknown("lowercase[0]"));
}

#[test]
fn substring_out_of_range_at_delivery() {
    let ctx = with_rcpt("bob", "example.org");
    for (template, spec) in [
        ("%{rcpt.user[3]}", "3"),
        ("%{rcpt.user[5:]}", "5:"),
        ("%{rcpt.user[2:1]}", "2:1"),
        ("%{rcpt.user[-4:]}", "-4:"),
    ] {
        assert!(validate(template).is_ok(), "{template} is well-formed");
        assert_eq!(
            expand(template, &ctx, '+'),
            Err(ExpandError::SubstringOutOfRange {
                variable: Variable::RcptUser,
                spec: spec.into(),
                len: 3
            }),
            "{template}"
        );
    }
}

#[test]
fn mda_outside_a_wrapper() {
    assert!(validate("wrap %{mda}").is_ok());
    assert_eq!(err("wrap %{mda}"), ExpandError::MdaUnavailable);
    let template = Template::parse("wrap %{mda} --").unwrap();
    assert!(template.uses(Variable::Mda));
    assert!(!template.uses(Variable::Rcpt));
}

#[test]
fn validate_reports_syntax_without_an_envelope() {
    assert_eq!(
        validate("/var/vmail/%{dest.domain}/%{dest.user:lowercase|strip}/Maildir"),
        Ok(())
    );
    assert_eq!(validate("~/Maildir"), Ok(()));
    assert_eq!(validate("/x/%{rcpt.domain[0:-4]}"), Ok(()));
    assert!(matches!(
        validate("%{rcpt"),
        Err(ExpandError::Unterminated { .. })
    ));
    assert!(matches!(
        validate("%{nope}"),
        Err(ExpandError::UnknownVariable { .. })
    ));
    assert!(matches!(
        validate("%{rcpt[a]}"),
        Err(ExpandError::BadSubstring { .. })
    ));
    assert!(matches!(
        validate("%{rcpt:nope}"),
        Err(ExpandError::UnknownModifier { .. })
    ));
}

#[test]
fn errors_explain_themselves() {
    assert_eq!(
        err("/var/%{rcpt").to_string(),
        "unterminated %{ at offset 5"
    );
    assert_eq!(
        err("%{nope}").to_string(),
        "unknown variable \"nope\" at offset 0"
    );
    assert_eq!(
        err("%{rcpt:nope}").to_string(),
        "unknown modifier \"nope\" at offset 0: expected lowercase, uppercase, strip or raw"
    );
    assert_eq!(
        err("%{rcpt[a]}").to_string(),
        "bad substring \"[a]\" at offset 0: expected [N], [N:], [:M] or [N:M]"
    );
    let out_of_range = expand("%{rcpt.user[9]}", &ctx(), '+').unwrap_err();
    assert_eq!(
        out_of_range.to_string(),
        "substring [9] does not fit %{rcpt.user} (8 characters)"
    );
    assert_eq!(out_of_range.offset(), None);
    assert_eq!(err("x%{nope}").offset(), Some(1));
    assert_eq!(
        err("%{mda}").to_string(),
        "%{mda} is only available in mda wrappers"
    );
}

//! Property: no sanitised expansion of a peer-supplied value can add a `/` or a `..` path
//! component to a template, whatever the recipient, modifiers, substring or delimiter.

use petrel_core::expand::{ExpandContext, ExpandError, MailAddr, Variable, expand};
use proptest::prelude::*;

/// Address parts an attacker might send: anything at all, and path-shaped strings.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[./a-z]{0,12}",
        "(\\.\\.|/|\\.|\\\\|~|[a-zA-Z]|%\\{rcpt\\}){0,8}",
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("../../etc".to_owned()),
        Just(String::new()),
    ]
}

fn addr() -> impl Strategy<Value = MailAddr> {
    (hostile(), hostile()).prop_map(|(user, domain)| MailAddr { user, domain })
}

fn context() -> impl Strategy<Value = ExpandContext> {
    (addr(), addr(), addr(), hostile()).prop_map(|(sender, rcpt, dest, user_name)| ExpandContext {
        sender,
        rcpt,
        dest,
        user_name,
        user_directory: "/home/user".into(),
        mda: None,
    })
}

fn sanitised_variable() -> impl Strategy<Value = Variable> {
    prop::sample::select(
        Variable::ALL
            .into_iter()
            .filter(|v| v.is_sanitised())
            .collect::<Vec<_>>(),
    )
}

fn substring() -> impl Strategy<Value = String> {
    let n = -6i32..10;
    prop_oneof![
        Just(String::new()),
        n.clone().prop_map(|a| format!("[{a}]")),
        n.clone().prop_map(|a| format!("[{a}:]")),
        n.clone().prop_map(|b| format!("[:{b}]")),
        (n.clone(), n).prop_map(|(a, b)| format!("[{a}:{b}]")),
    ]
}

fn modifiers() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["lowercase", "uppercase", "strip"]),
        0..4,
    )
    .prop_map(|m| {
        if m.is_empty() {
            String::new()
        } else {
            format!(":{}", m.join("|"))
        }
    })
}

/// A `%{…}` token over a sanitised variable, never `:raw`.
fn token() -> impl Strategy<Value = String> {
    (sanitised_variable(), substring(), modifiers())
        .prop_map(|(v, sub, mods)| format!("%{{{}{sub}{mods}}}", v.name()))
}

fn delim() -> impl Strategy<Value = char> {
    prop::sample::select(vec!['+', '-', '=', '.', '/'])
}

/// Expands, treating a substring that does not fit the value as "no path at all".
fn try_expand(template: &str, ctx: &ExpandContext, delim: char) -> Option<String> {
    match expand(template, ctx, delim) {
        Ok(out) => Some(out),
        Err(ExpandError::SubstringOutOfRange { .. }) => None,
        Err(e) => panic!("{template} should be well-formed: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_single_token_has_no_slash_no_dot_dot_and_is_not_a_dot(
        ctx in context(), token in token(), delim in delim(),
    ) {
        if let Some(out) = try_expand(&token, &ctx, delim) {
            prop_assert!(!out.contains('/'), "{} -> {:?}", token, out);
            prop_assert!(!out.contains(".."), "{} -> {:?}", token, out);
            prop_assert!(out != ".", "{} -> {:?}", token, out);
        }
    }

    #[test]
    fn maildir_paths_stay_inside_their_directory(
        ctx in context(), tokens in prop::collection::vec(token(), 1..4), delim in delim(),
    ) {
        // One token per component, then all of them glued into a single component.
        for template in [
            format!("/var/vmail/{}/Maildir", tokens.join("/")),
            format!("/var/vmail/{}/Maildir", tokens.concat()),
        ] {
            let Some(out) = try_expand(&template, &ctx, delim) else { continue };
            let expected_slashes = template.matches('/').count();
            prop_assert_eq!(out.matches('/').count(), expected_slashes, "{} -> {:?}", template, out);
            for component in out.split('/') {
                prop_assert!(component != ".." && component != ".", "{} -> {:?}", template, out);
            }
            prop_assert!(out.starts_with("/var/vmail/") && out.ends_with("/Maildir"));
        }
    }

    #[test]
    fn raw_is_the_only_way_to_get_a_slash_through(user in "[a-z]{1,5}/[a-z]{1,5}") {
        let ctx = ExpandContext { rcpt: MailAddr::new(user.clone(), "example.org"), ..ExpandContext::default() };
        prop_assert_eq!(expand("%{rcpt.user:raw}", &ctx, '+').unwrap(), user.clone());
        prop_assert_eq!(expand("%{rcpt.user}", &ctx, '+').unwrap(), user.replace('/', ":"));
    }
}

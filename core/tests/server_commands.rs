//! The server machine's commands outside message data: greeting, HELO/EHLO, sequencing,
//! VRFY/EXPN/HELP/NOOP/RSET/QUIT, paths and ESMTP parameters, and what every malformed
//! command gets back.
#[path = "server_util.rs"]
mod util;

use petrel_core::session::Decision;
use petrel_core::session::harness::ServerHarness;
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig, ServerEvent, TlsPolicy};
use petrel_core::smtp::{
    Body, EnhancedCode, ForwardPath, Host, MailParams, Notify, Orcpt, RcptParams, Reply, Ret,
    ReversePath,
};
use util::{Driver, codes, config, ehlo, harness, in_transaction, refuse};

const EHLO_DEFAULT: &str = "250-localhost Hello client.example [192.0.2.1], pleased to meet you\r\n\
    250-8BITMIME\r\n\
    250-ENHANCEDSTATUSCODES\r\n\
    250-SIZE 36700160\r\n\
    250-PIPELINING\r\n\
    250-CHUNKING\r\n\
    250-BINARYMIME\r\n\
    250-SMTPUTF8\r\n\
    250-DSN\r\n\
    250 HELP\r\n";

#[test]
fn greeting_names_the_host_and_banner() {
    let h = harness(ServerConfig {
        hostname: "mx.example.net".into(),
        banner: "ESMTP ready".into(),
        ..config()
    });
    assert_eq!(h.greeting, b"220 mx.example.net ESMTP ready\r\n");
    assert_eq!(h.requests, [Request::Connect]);
}

#[test]
fn ehlo_lists_the_configured_keywords() {
    let mut h = harness(config());
    assert_eq!(h.line("EHLO client.example"), EHLO_DEFAULT);
    assert!(h.session.is_esmtp());
    assert_eq!(
        h.requests[1],
        Request::Helo {
            ehlo: true,
            host: Host::Domain("client.example".into())
        }
    );

    let mut h = harness(ServerConfig {
        max_message_size: 0,
        pipelining: false,
        chunking: false,
        eight_bit_mime: false,
        smtputf8: false,
        dsn: false,
        ..config()
    });
    assert_eq!(
        h.line("EHLO [192.0.2.7]"),
        "250-localhost Hello [192.0.2.7] [192.0.2.1], pleased to meet you\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250 HELP\r\n"
    );

    let mut h = harness(ServerConfig {
        tls: TlsPolicy::Offer,
        auth: AuthPolicy::Optional,
        auth_plaintext: true,
        ..config()
    });
    let reply = h.line("EHLO client.example");
    assert!(reply.contains("250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"));
}

#[test]
fn smtputf8_is_only_offered_with_8bitmime() {
    // RFC 6531 section 3.1: SMTPUTF8 requires 8BITMIME.
    let mut h = harness(ServerConfig {
        eight_bit_mime: false,
        ..config()
    });
    let reply = h.line("EHLO client.example");
    assert!(!reply.contains("SMTPUTF8"), "{reply}");
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SMTPUTF8"),
        "555 5.5.4 Parameter not supported by this server\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<jö@example.org> SMTPUTF8"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
}

#[test]
fn helo_gets_one_line_and_no_extensions() {
    let mut h = harness(config());
    assert_eq!(
        h.line("HELO client.example"),
        "250 localhost Hello client.example [192.0.2.1], pleased to meet you\r\n"
    );
    assert!(!h.session.is_esmtp());
    assert_eq!(
        h.session.helo(),
        Some(&Host::Domain("client.example".into()))
    );
    // No ESMTP parameter was offered, so none is accepted, on MAIL or on RCPT.
    for line in [
        "MAIL FROM:<a@example.org> SIZE=10",
        "MAIL FROM:<a@example.org> BODY=8BITMIME",
        "MAIL FROM:<a@example.org> BODY=7BIT",
        "MAIL FROM:<a@example.org> RET=FULL",
    ] {
        assert_eq!(
            h.line(line),
            "555 5.5.4 Parameter not supported by this server\r\n",
            "{line}"
        );
    }
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org> NOTIFY=NEVER"),
        "555 5.5.4 Parameter not supported by this server\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
}

#[test]
fn a_new_helo_or_ehlo_resets_the_transaction() {
    for greeting in ["EHLO again.example", "HELO again.example"] {
        let mut h = in_transaction(config());
        assert!(h.line(greeting).starts_with("250"));
        assert_eq!(
            h.line("RCPT TO:<c@example.org>"),
            "503 5.5.1 Error: need MAIL command\r\n"
        );
        assert_eq!(h.line("DATA"), "503 5.5.1 Error: need MAIL command\r\n");
    }
    // A refused EHLO changes nothing.
    let mut h = ServerHarness::new(
        config(),
        Box::new(|r| match r {
            Request::Helo { host, .. } if host.eq_ignore_case("bad.example") => {
                refuse(550, (5, 7, 1), "Go away")
            }
            _ => Decision::Accept,
        }),
    );
    h.line("EHLO client.example");
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(h.line("EHLO bad.example"), "550 5.7.1 Go away\r\n");
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    assert!(h.session.is_esmtp());
}

#[test]
fn noop_vrfy_expn_help_and_rset_work_in_every_state() {
    type Make = fn() -> ServerHarness;
    let states: [(&str, Make); 3] = [
        ("before HELO", || harness(config())),
        ("after EHLO", || ehlo(config())),
        ("in a transaction", || in_transaction(config())),
    ];
    for (state, make) in states {
        let mut h = make();
        assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n", "{state}");
        assert_eq!(
            h.line("NOOP ignored argument"),
            "250 2.0.0 Ok\r\n",
            "{state}"
        );
        assert_eq!(
            h.line("VRFY someone"),
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n",
            "{state}"
        );
        assert_eq!(
            h.line("EXPN list"),
            "502 5.5.1 EXPN not available\r\n",
            "{state}"
        );
        let help = h.line("HELP");
        assert!(help.starts_with("214-2.0.0 "), "{state}: {help}");
        assert!(help.ends_with("214 2.0.0 End of HELP info\r\n"), "{state}");
        assert!(h.line("HELP MAIL").starts_with("214-2.0.0 "), "{state}");
        if state == "in a transaction" {
            // None of those touched the transaction.
            assert_eq!(
                h.line("RCPT TO:<c@example.org>"),
                "250 2.1.5 Recipient ok\r\n"
            );
        }
        assert_eq!(h.line("RSET"), "250 2.0.0 Reset state\r\n", "{state}");
        assert!(!h.closed);
    }
    let mut h = in_transaction(config());
    h.line("RSET");
    assert_eq!(
        h.line("RCPT TO:<c@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    // RSET keeps the EHLO.
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn commands_that_take_no_argument_refuse_one() {
    let mut h = in_transaction(config());
    for line in ["RSET now", "QUIT now", "DATA now", "STARTTLS now"] {
        assert_eq!(
            h.line(line),
            "501 5.5.4 Syntax error: no arguments allowed\r\n",
            "{line}"
        );
    }
    // Trailing spaces are not an argument.
    assert_eq!(h.line("RSET  "), "250 2.0.0 Reset state\r\n");
    assert_eq!(
        h.line("VRFY"),
        "501 5.5.4 Syntax error: VRFY needs an argument\r\n"
    );
    assert_eq!(
        h.line("EXPN"),
        "501 5.5.4 Syntax error: EXPN needs an argument\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn quit_says_bye_and_ignores_what_follows() {
    let mut h = ehlo(config());
    let out = h.send(b"QUIT\r\nNOOP\r\n");
    assert_eq!(out, b"221 2.0.0 Bye\r\n");
    assert!(h.closed && h.session.is_closed());
    assert_eq!(h.send(b"NOOP\r\n"), b"");
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn verbs_are_case_insensitive() {
    let mut h = harness(config());
    assert!(h.line("ehlo client.example").starts_with("250-"));
    assert_eq!(
        h.line("mail from:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("Rcpt To:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    assert!(h.line("data").starts_with("354 "));
}

#[test]
fn unknown_commands_get_500() {
    let mut h = ehlo(config());
    for line in [
        "FOO",
        "",
        " NOOP",
        "GET / HTTP/1.1",
        "MAILFROM:<a@example.org>",
        "TURN",
    ] {
        assert_eq!(
            h.line(line),
            "500 5.5.1 Command unrecognized\r\n",
            "{line:?}"
        );
    }
    assert_eq!(
        h.send(b"HELP \xff\r\n"),
        b"500 5.5.2 Invalid characters in command\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn commands_out_of_sequence_get_503_and_change_nothing() {
    let mut h = harness(config());
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(h.line("DATA"), "503 5.5.1 Error: need MAIL command\r\n");
    h.line("EHLO client.example");
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(h.line("DATA"), "503 5.5.1 Error: need RCPT command\r\n");
    assert_eq!(
        h.line("MAIL FROM:<c@example.org>"),
        "503 5.5.1 Error: nested MAIL command\r\n"
    );
    // The first transaction is still open.
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    assert!(h.line("DATA").starts_with("354 "));
    h.send(b".\r\n");
    assert_eq!(h.stored.len(), 1);
    assert_eq!(
        h.stored[0].envelope.from,
        ReversePath::Mailbox(petrel_core::smtp::Mailbox::parse("a@example.org", false).unwrap())
    );
}

#[test]
fn data_after_every_recipient_was_refused_gets_554() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Rcpt { .. } => refuse(550, (5, 1, 1), "No such user"),
            _ => Decision::Accept,
        }),
    );
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(
        h.line("RCPT TO:<nobody@example.org>"),
        "550 5.1.1 No such user\r\n"
    );
    assert_eq!(h.line("DATA"), "554 5.5.1 Error: no valid recipients\r\n");
    // The transaction is still there: RSET or another RCPT.
    assert_eq!(h.line("RSET"), "250 2.0.0 Reset state\r\n");
}

#[test]
fn malformed_paths_get_501_with_the_right_enhanced_code() {
    let mut h = ehlo(config());
    let cases = [
        ("MAIL FROM:a@example.org", "501 5.1.7"),
        ("MAIL FROM:<a@example.org", "501 5.1.7"),
        ("MAIL FROM:<a@@example.org>", "501 5.1.7"),
        ("MAIL FROM:<a@example.org>x", "501 5.1.7"),
        ("MAIL FROM:<@:a@example.org>", "501 5.1.7"),
        ("MAIL FROM:<a@-example.org>", "501 5.1.7"),
        ("MAIL TO:<a@example.org>", "501 5.5.4"),
        ("MAIL", "501 5.5.4"),
    ];
    for (line, code) in cases {
        assert_eq!(
            codes(&h.send(format!("{line}\r\n").as_bytes())),
            [code],
            "{line}"
        );
    }
    h.line("MAIL FROM:<a@example.org>");
    let cases = [
        ("RCPT TO:<>", "501 5.1.3"),
        ("RCPT TO:b@example.org", "501 5.1.3"),
        ("RCPT TO:<b.@example.org>", "501 5.1.3"),
        ("RCPT TO:<b@example..org>", "501 5.1.3"),
        ("RCPT FROM:<b@example.org>", "501 5.5.4"),
        ("RCPT", "501 5.5.4"),
    ];
    for (line, code) in cases {
        assert_eq!(
            codes(&h.send(format!("{line}\r\n").as_bytes())),
            [code],
            "{line}"
        );
    }
    // Still in the transaction.
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
}

#[test]
fn bad_helo_arguments_get_501() {
    let mut h = harness(config());
    assert_eq!(
        h.line("EHLO"),
        "501 5.5.4 Syntax error: HELO/EHLO needs a domain\r\n"
    );
    assert_eq!(
        h.line("HELO"),
        "501 5.5.4 Syntax error: HELO/EHLO needs a domain\r\n"
    );
    assert_eq!(
        h.line("EHLO bad domain"),
        "501 5.5.4 Invalid domain name\r\n"
    );
    assert_eq!(
        h.line("EHLO [300.1.1.1]"),
        "501 5.5.4 Invalid domain name\r\n"
    );
    assert_eq!(h.session.helo(), None);
    assert_eq!(h.requests, [Request::Connect]);
}

#[test]
fn null_sender_postmaster_and_source_routes_are_accepted() {
    let mut h = ehlo(config());
    assert_eq!(h.line("MAIL FROM:<>"), "250 2.1.0 Sender ok\r\n");
    assert_eq!(h.line("RCPT TO:<Postmaster>"), "250 2.1.5 Recipient ok\r\n");
    assert_eq!(
        h.line("RCPT TO:<postmaster@localhost>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<@relay1.example,@relay2.example:c@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    h.line("DATA");
    h.send(b"x\r\n.\r\n");
    let env = &h.stored[0].envelope;
    assert_eq!(env.from, ReversePath::Null);
    let rcpts: Vec<String> = env.rcpts.iter().map(|(p, _)| p.to_string()).collect();
    // The bare postmaster keeps its case; the source route is dropped (RFC 5321 appendix C).
    assert_eq!(
        rcpts,
        ["<Postmaster>", "<postmaster@localhost>", "<c@example.org>"]
    );
    assert!(matches!(env.rcpts[0].0, ForwardPath::Postmaster(_)));

    let mut h = ehlo(config());
    assert_eq!(
        h.line("MAIL FROM:<@a.example:s@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.requests.last().map(|r| match r {
            Request::Mail { from, .. } => from.to_string(),
            _ => String::new(),
        }),
        Some("<s@example.org>".into())
    );
}

#[test]
fn space_after_the_colon_is_tolerated() {
    let mut h = ehlo(config());
    assert_eq!(
        h.line("MAIL FROM: <a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO: <b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
}

#[test]
fn esmtp_parameters_reach_the_shell_parsed() {
    let mut h = ehlo(ServerConfig {
        auth: AuthPolicy::Optional,
        auth_plaintext: true,
        ..config()
    });
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.org"),
        "250 2.1.5 Recipient ok\r\n"
    );
    let Request::Mail { params, .. } = &h.requests[2] else {
        panic!("{:?}", h.requests)
    };
    assert_eq!(
        *params,
        MailParams {
            size: Some(1000),
            body: Some(Body::EightBitMime),
            smtputf8: false,
            ret: Some(Ret::Headers),
            envid: Some("QQ+1".into()),
            auth: Some(String::new()),
        }
    );
    let Request::Rcpt { params, .. } = &h.requests[3] else {
        panic!("{:?}", h.requests)
    };
    assert_eq!(
        *params,
        RcptParams {
            notify: Some(Notify {
                never: false,
                success: true,
                failure: true,
                delay: false
            }),
            orcpt: Some(Orcpt {
                addr_type: "rfc822".into(),
                address: "b+x@example.org".into()
            }),
        }
    );
}

#[test]
fn unknown_parameters_get_555_and_malformed_ones_501() {
    let mut h = ehlo(config());
    let cases = [
        ("MAIL FROM:<a@example.org> FOO=bar", "555 5.5.4"),
        ("MAIL FROM:<a@example.org> X-FLAG", "555 5.5.4"),
        ("MAIL FROM:<a@example.org> SIZE=big", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> SIZE", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> BODY=9BIT", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> RET=ALL", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> ENVID=a+zz", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> SMTPUTF8=yes", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> AUTH=", "501 5.5.4"),
        ("MAIL FROM:<a@example.org> =x", "501 5.5.4"),
    ];
    for (line, code) in cases {
        assert_eq!(
            codes(&h.send(format!("{line}\r\n").as_bytes())),
            [code],
            "{line}"
        );
    }
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> FOO=bar"),
        "555 5.5.4 Unsupported parameter FOO\r\n"
    );
    h.line("MAIL FROM:<a@example.org>");
    let cases = [
        ("RCPT TO:<b@example.org> SIZE=1", "555 5.5.4"),
        ("RCPT TO:<b@example.org> NOTIFY=NEVER,DELAY", "501 5.5.4"),
        ("RCPT TO:<b@example.org> NOTIFY=", "501 5.5.4"),
        ("RCPT TO:<b@example.org> ORCPT=nosemicolon", "501 5.5.4"),
        (
            "RCPT TO:<b@example.org> NOTIFY=DELAY NOTIFY=DELAY",
            "501 5.5.4",
        ),
    ];
    for (line, code) in cases {
        assert_eq!(
            codes(&h.send(format!("{line}\r\n").as_bytes())),
            [code],
            "{line}"
        );
    }
    // None of them asked the shell anything.
    assert_eq!(h.requests.len(), 3);
}

#[test]
fn parameters_of_extensions_not_offered_get_555() {
    let mut h = ehlo(ServerConfig {
        dsn: false,
        eight_bit_mime: false,
        chunking: false,
        smtputf8: false,
        ..config()
    });
    for line in [
        "MAIL FROM:<a@example.org> RET=FULL",
        "MAIL FROM:<a@example.org> ENVID=x",
        "MAIL FROM:<a@example.org> BODY=8BITMIME",
        "MAIL FROM:<a@example.org> BODY=BINARYMIME",
        "MAIL FROM:<a@example.org> SMTPUTF8",
        // AUTH is not offered (AuthPolicy::Off), so neither is its MAIL parameter.
        "MAIL FROM:<a@example.org> AUTH=<>",
    ] {
        assert_eq!(
            h.line(line),
            "555 5.5.4 Parameter not supported by this server\r\n",
            "{line}"
        );
    }
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> BODY=7BIT SIZE=5"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org> NOTIFY=NEVER"),
        "555 5.5.4 Parameter not supported by this server\r\n"
    );
}

#[test]
fn declared_size_over_the_limit_gets_552() {
    let mut h = ehlo(ServerConfig {
        max_message_size: 1000,
        ..config()
    });
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SIZE=1001"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SIZE=99999999999999999999"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    // Not a protocol error, no transaction, and the session goes on.
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SIZE=1000"),
        "250 2.1.0 Sender ok\r\n"
    );
    // No limit: any SIZE goes.
    let mut h = ehlo(ServerConfig {
        max_message_size: 0,
        ..config()
    });
    assert_eq!(
        h.line("MAIL FROM:<a@example.org> SIZE=99999999999"),
        "250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn non_ascii_addresses_need_smtputf8() {
    let mut h = ehlo(config());
    assert_eq!(
        h.line("MAIL FROM:<jö@example.org>"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<j@exämple.org>"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<ü@example.org>"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
    h.line("RSET");
    assert_eq!(
        h.line("MAIL FROM:<jö@example.org> SMTPUTF8"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<ü@exämple.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    let Request::Mail { params, .. } = &h.requests[3] else {
        panic!("{:?}", h.requests)
    };
    assert!(params.smtputf8);

    // After HELO there is no SMTPUTF8 at all.
    let mut h = harness(config());
    h.line("HELO client.example");
    assert_eq!(
        h.line("MAIL FROM:<jö@example.org> SMTPUTF8"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
    // And with SMTPUTF8 switched off neither.
    let mut h = ehlo(ServerConfig {
        smtputf8: false,
        ..config()
    });
    assert_eq!(
        h.line("MAIL FROM:<jö@example.org> SMTPUTF8"),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"
    );
}

#[test]
fn the_recipient_limit_gets_452_and_keeps_the_others() {
    let mut h = ehlo(ServerConfig {
        max_recipients: 3,
        ..config()
    });
    h.line("MAIL FROM:<a@example.org>");
    for i in 0..3 {
        assert_eq!(
            h.line(&format!("RCPT TO:<r{i}@example.org>")),
            "250 2.1.5 Recipient ok\r\n"
        );
    }
    assert_eq!(
        h.line("RCPT TO:<r3@example.org>"),
        "452 4.5.3 Error: too many recipients\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<r4@example.org>"),
        "452 4.5.3 Error: too many recipients\r\n"
    );
    assert!(h.line("DATA").starts_with("354 "));
    assert_eq!(
        h.send(b"x\r\n.\r\n"),
        b"250 2.0.0 Message accepted for delivery\r\n"
    );
    assert_eq!(h.stored[0].envelope.rcpts.len(), 3);
    // The shell was asked about three recipients only; 452s are not errors.
    let rcpts = h
        .requests
        .iter()
        .filter(|r| matches!(r, Request::Rcpt { .. }))
        .count();
    assert_eq!(rcpts, 3);
}

#[test]
fn the_default_recipient_limit_is_at_least_100() {
    let mut h = ehlo(config());
    h.line("MAIL FROM:<a@example.org>");
    for i in 0..100 {
        assert_eq!(
            h.line(&format!("RCPT TO:<r{i}@example.org>")),
            "250 2.1.5 Recipient ok\r\n"
        );
    }
}

#[test]
fn the_message_limit_per_session_gets_452() {
    let mut h = ehlo(ServerConfig {
        max_messages: 1,
        ..config()
    });
    h.line("MAIL FROM:<a@example.org>");
    h.line("RCPT TO:<b@example.org>");
    h.line("DATA");
    h.send(b"x\r\n.\r\n");
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "452 4.7.0 Error: too many messages in this session\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn command_lines_are_limited_to_512_octets() {
    let mut h = ehlo(config());
    // 512 octets with the CRLF: accepted.
    let ok = format!("NOOP {}", "x".repeat(505));
    assert_eq!(ok.len() + 2, 512);
    assert_eq!(h.line(&ok), "250 2.0.0 Ok\r\n");
    // 513: refused, and the rest of the line is not taken for a command.
    let long = format!("NOOP {}", "x".repeat(506));
    assert_eq!(h.line(&long), "500 5.5.2 Line too long\r\n");
    let very_long = format!("NOOP {}QUIT", "x".repeat(5000));
    assert_eq!(h.line(&very_long), "500 5.5.2 Line too long\r\n");
    assert!(!h.closed);
    // An over-long line that arrives in pieces gets one reply, once its end is seen.
    assert_eq!(h.send("y".repeat(2000).as_bytes()), b"");
    assert_eq!(h.send("y".repeat(2000).as_bytes()), b"");
    assert_eq!(
        h.send(b"QUIT\r\nNOOP\r\n"),
        b"500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
}

#[test]
fn mail_and_rcpt_lines_may_be_longer_for_their_parameters() {
    // RFC 1870, 3461 and 4954 each extend the command line limit for their parameters.
    let mut h = ehlo(ServerConfig {
        auth: AuthPolicy::Optional,
        auth_plaintext: true,
        ..config()
    });
    let local = "l".repeat(64);
    let domain = format!("{}.example.org", "d".repeat(60));
    let mail = format!(
        "MAIL FROM:<{local}@{domain}> SIZE=00000000000000012345 RET=HDRS ENVID={} AUTH={}",
        "e".repeat(100),
        "u".repeat(400)
    );
    assert!(mail.len() > 650, "{}", mail.len());
    assert_eq!(h.line(&mail), "250 2.1.0 Sender ok\r\n");
    let rcpt = format!(
        "RCPT TO:<{local}@{domain}> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;{}",
        "o".repeat(490)
    );
    assert!(rcpt.len() > 600);
    assert_eq!(h.line(&rcpt), "250 2.1.5 Recipient ok\r\n");
    // Other commands keep the plain limit.
    assert_eq!(
        h.line(&format!("VRFY {}", "v".repeat(600))),
        "500 5.5.2 Line too long\r\n"
    );
}

#[test]
fn bare_line_endings_in_commands_are_refused() {
    let mut h = ehlo(config());
    // A bare LF does not end a command: the line is refused and not executed.
    assert_eq!(
        h.send(b"MAIL FROM:<a@example.org>\n"),
        b"500 5.5.2 Syntax error: bare <LF> received; lines must end with <CR><LF>\r\n"
    );
    assert_eq!(
        h.send(b"NOOP\rRSET\r\n"),
        b"500 5.5.2 Syntax error: bare <CR> in command\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(h.requests.len(), 2);

    // Normalize: a bare LF ends a command line like CRLF; a bare CR inside one still does not.
    let mut h = ehlo(ServerConfig {
        bare_newline: petrel_core::smtp::BareNewline::Normalize,
        ..config()
    });
    assert_eq!(
        h.send(b"MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"),
        b"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
    );
    assert_eq!(
        h.send(b"NOOP\rRSET\r\n"),
        b"500 5.5.2 Syntax error: bare <CR> in command\r\n"
    );
}

#[test]
fn too_many_errors_end_the_session_with_421() {
    let mut h = ehlo(ServerConfig {
        max_errors: 3,
        ..config()
    });
    assert_eq!(h.line("FOO"), "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(
        h.line("RCPT TO:<a@example.org>"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    // Replies that are not protocol errors do not count.
    assert_eq!(h.line("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        h.send(b"BAR\r\nNOOP\r\n"),
        b"500 5.5.1 Command unrecognized\r\n421 4.7.0 localhost Error: too many errors\r\n"
    );
    assert!(h.closed);
    assert!(h.transcript().ends_with("E: close\n"));
}

#[test]
fn policy_replies_are_sent_as_given() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Mail { from, .. } if from.to_string() == "<spam@example.org>" => {
                refuse(550, (5, 7, 1), "Sender rejected")
            }
            Request::Rcpt { to, .. } if to.to_string() == "<later@example.org>" => {
                refuse(450, (4, 2, 0), "Try later")
            }
            Request::Rcpt { to, .. } if to.to_string() == "<fwd@example.org>" => {
                Decision::Reply(Reply::new(251, EnhancedCode::new(2, 1, 5), "Will forward"))
            }
            Request::Rcpt { to, .. } if to.to_string() == "<bye@example.org>" => {
                Decision::Disconnect(Reply::new(421, EnhancedCode::new(4, 7, 0), "Go away"))
            }
            _ => Decision::Accept,
        }),
    );
    assert_eq!(
        h.line("MAIL FROM:<spam@example.org>"),
        "550 5.7.1 Sender rejected\r\n"
    );
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "250 2.1.0 Sender ok\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<later@example.org>"),
        "450 4.2.0 Try later\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<fwd@example.org>"),
        "251 2.1.5 Will forward\r\n"
    );
    assert_eq!(
        h.line("RCPT TO:<b@example.org>"),
        "250 2.1.5 Recipient ok\r\n"
    );
    h.line("DATA");
    h.send(b"x\r\n.\r\n");
    let rcpts: Vec<String> = h.stored[0]
        .envelope
        .rcpts
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(rcpts, ["<fwd@example.org>", "<b@example.org>"]);
    h.line("MAIL FROM:<a@example.org>");
    assert_eq!(
        h.send(b"RCPT TO:<bye@example.org>\r\nNOOP\r\n"),
        b"421 4.7.0 Go away\r\n"
    );
    assert!(h.closed);
}

#[test]
fn a_421_reply_from_the_policy_closes_the_session() {
    let mut h = util::after_ehlo(
        config(),
        Box::new(|r| match r {
            Request::Mail { .. } => refuse(421, (4, 3, 2), "System shutting down"),
            _ => Decision::Accept,
        }),
    );
    assert_eq!(
        h.send(b"MAIL FROM:<a@example.org>\r\nNOOP\r\n"),
        b"421 4.3.2 System shutting down\r\n"
    );
    assert!(h.closed);
}

#[test]
fn mail_needs_authentication_when_required() {
    let mut h = ehlo(ServerConfig {
        auth: AuthPolicy::Required,
        ..config()
    });
    assert_eq!(
        h.line("MAIL FROM:<a@example.org>"),
        "530 5.7.0 Authentication required\r\n"
    );
}

// ----- greeting and early talkers (driven directly: the harness greets at once) -----

#[test]
fn the_greeting_waits_for_the_connect_answer() {
    let mut d = Driver::new(config());
    assert_eq!(d.peek(), Some(&Request::Connect));
    assert_eq!(d.take_output(), "");
    // No idle timer while the shell decides.
    assert_eq!(d.session.poll_timeout(), None);
    d.accept();
    assert_eq!(d.take_output(), "220 localhost ESMTP Petrel\r\n");
    assert!(d.session.poll_timeout().is_some());
}

#[test]
fn a_custom_greeting_from_the_shell_is_used() {
    let mut d = Driver::new(config());
    d.answer(Decision::Reply(Reply::plain(
        220,
        "mx.example.net Hello there",
    )));
    assert_eq!(d.take_output(), "220 mx.example.net Hello there\r\n");
}

#[test]
fn an_early_talker_is_refused_and_its_commands_are_not_run() {
    let mut d = Driver::new(config());
    d.input(b"EHLO bot.example\r\nMAIL FROM:<spam@example.org>\r\n");
    // Nothing is processed before the greeting.
    assert_eq!(d.take_output(), "");
    assert_eq!(d.pending.len(), 1);
    d.accept();
    // RFC 5321 section 3.1: after a 554 greeting the server waits for QUIT and answers 503 to
    // anything else.
    assert_eq!(
        d.take_output(),
        "554 localhost Protocol error: input sent before the greeting\r\n\
         503 5.5.1 Error: no SMTP service here, only QUIT is accepted\r\n\
         503 5.5.1 Error: no SMTP service here, only QUIT is accepted\r\n"
    );
    assert!(d.pending.is_empty(), "{:?}", d.pending);
    assert!(!d.closed());
    d.input(b"NOOP\r\nQUIT\r\n");
    assert_eq!(
        d.take_output(),
        "503 5.5.1 Error: no SMTP service here, only QUIT is accepted\r\n221 2.0.0 Bye\r\n"
    );
    assert!(d.closed());
}

#[test]
fn an_empty_read_is_not_early_talking() {
    let mut d = Driver::new(config());
    d.input(b"");
    d.accept();
    assert_eq!(d.take_output(), "220 localhost ESMTP Petrel\r\n");
}

#[test]
fn a_554_greeting_from_the_shell_waits_for_quit() {
    let mut d = Driver::new(config());
    d.answer(Decision::Reply(Reply::plain(
        554,
        "localhost No SMTP service for you",
    )));
    assert_eq!(d.take_output(), "554 localhost No SMTP service for you\r\n");
    d.input(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n");
    assert_eq!(
        codes(d.take_output().as_bytes()),
        ["503 5.5.1", "503 5.5.1"]
    );
    assert!(d.pending.is_empty());
    d.input(b"QUIT\r\n");
    assert_eq!(d.take_output(), "221 2.0.0 Bye\r\n");
    assert!(d.closed());
}

#[test]
fn a_421_greeting_closes_at_once() {
    for decision in [
        Decision::Reply(Reply::plain(421, "localhost Too busy")),
        Decision::Disconnect(Reply::plain(554, "localhost Blocked")),
    ] {
        let mut d = Driver::new(config());
        d.answer(decision);
        let out = d.take_output();
        assert!(out.starts_with("421 ") || out.starts_with("554 "), "{out}");
        assert!(d.closed());
        assert!(d.session.is_closed());
    }
}

#[test]
fn events_after_close_are_not_produced() {
    let mut d = Driver::greeted(config());
    d.input(b"QUIT\r\n");
    assert!(d.closed());
    assert_eq!(d.take_output(), "221 2.0.0 Bye\r\n");
    d.take_events();
    d.input(b"NOOP\r\n");
    d.advance(10_000);
    d.session.shutdown();
    d.drain();
    assert_eq!(d.take_output(), "");
    assert_eq!(d.take_events(), Vec::<ServerEvent>::new());
}

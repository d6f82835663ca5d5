use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn alice() -> Invoker {
    Invoker {
        login: "alice".into(),
        gecos: Some("Alice Liddell".into()),
    }
}

fn at(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn options_as_other_sendmails_take_them() {
    let o = Options::parse(&args(&[
        "-t",
        "-oi",
        "-fbounce@example.org",
        "-F",
        "Bob",
        "x@y",
    ]))
    .unwrap();
    assert!(o.from_headers && o.ignore_dots && !o.smtp);
    assert_eq!(o.sender.as_deref(), Some("bounce@example.org"));
    assert_eq!(o.full_name.as_deref(), Some("Bob"));
    assert_eq!(o.recipients, ["x@y"]);
    let o = Options::parse(&args(&["-bs"])).unwrap();
    assert!(o.smtp);
    // Ignored, as elsewhere.
    let o = Options::parse(&args(&["-odi", "-oem", "-v", "-i", "--", "-odd@host"])).unwrap();
    assert_eq!(o.recipients, ["-odd@host"]);
    assert!(o.ignore_dots);
    assert_eq!(
        Options::parse(&args(&["-f"])),
        Err(UsageError("-f needs a value".into()))
    );
    assert!(Options::parse(&args(&["-bp"])).is_err());
    assert!(Options::parse(&args(&["-Z"])).is_err());
}

#[test]
fn a_lone_dot_ends_the_message_unless_told_otherwise() {
    let input = b"Subject: x\n\nline\n.\nafter\n";
    assert_eq!(
        read_message(&input[..], false).unwrap(),
        b"Subject: x\r\n\r\nline\r\n"
    );
    assert_eq!(
        read_message(&input[..], true).unwrap(),
        b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n"
    );
    // CRLF input stays CRLF; a last line without an end gets one.
    assert_eq!(read_message(&b"a\r\nb"[..], true).unwrap(), b"a\r\nb\r\n");
}

#[test]
fn recipients_from_headers_and_bcc_removed() {
    let o = Options::parse(&args(&["-t"])).unwrap();
    let content = b"To: Bob <bob@example.net>, \"Smith, C\" <carol@example.net>\r\n\
        Cc: dave@example.net (Dave)\r\nBcc: eve@example.net,\r\n frank\r\n\
        Subject: hello\r\n\r\nbody\r\n"
        .to_vec();
    let p = prepare(&o, content, &alice(), "host.example", at(1_795_000_000)).unwrap();
    assert_eq!(p.sender, "alice@host.example");
    assert_eq!(
        p.recipients,
        [
            "bob@example.net",
            "carol@example.net",
            "dave@example.net",
            "eve@example.net",
            "frank@host.example"
        ]
    );
    let text = String::from_utf8(p.content).unwrap();
    assert!(!text.contains("Bcc") && !text.contains("frank"), "{text}");
    assert!(
        text.starts_with("From: Alice Liddell <alice@host.example>\r\nDate: "),
        "{text}"
    );
    assert!(text.contains("Message-ID: <"), "{text}");
    assert!(text.contains("To: Bob <bob@example.net>"), "{text}");
    assert!(text.ends_with("Subject: hello\r\n\r\nbody\r\n"), "{text}");
}

#[test]
fn existing_headers_are_kept_and_nothing_is_added_twice() {
    let o = Options::parse(&args(&[
        "-f",
        "me@example.org",
        "-F",
        "Me, Myself",
        "bob@example.net",
    ]))
    .unwrap();
    let content = b"From: someone@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
        Message-ID: <x@y>\r\n\r\nbody\r\n"
        .to_vec();
    let p = prepare(&o, content.clone(), &alice(), "h", at(0)).unwrap();
    assert_eq!(p.content, content);
    assert_eq!(p.sender, "me@example.org");
    // Without a From:, -F names the sender, quoted when it must be.
    let p = prepare(&o, b"\r\nbody\r\n".to_vec(), &alice(), "h", at(0)).unwrap();
    let text = String::from_utf8(p.content).unwrap();
    assert!(
        text.starts_with("From: \"Me, Myself\" <me@example.org>\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nbody\r\n"), "{text}");
    assert!(
        text.contains("Date: Thu, 1 Jan 1970 00:00:00 +0000"),
        "{text}"
    );
}

#[test]
fn no_recipient_is_an_error() {
    let o = Options::parse(&args(&["-t"])).unwrap();
    assert!(prepare(&o, b"Subject: x\r\n\r\n".to_vec(), &alice(), "h", at(0)).is_err());
}

#[test]
fn offline_files_read_back_what_was_written() {
    let m = Prepared {
        sender: "alice@h".into(),
        recipients: vec!["bob@example.net".into(), "carol@example.net".into()],
        content: b"Subject: x\r\n\r\n\n\nbody with\nnewlines\r\n".to_vec(),
    };
    assert_eq!(parse_offline(&offline_bytes(&m)).unwrap(), m);
    assert!(parse_offline(b"root:x:0:0::/root:/bin/sh\n").is_err());
    assert!(parse_offline(b"PETREL-OFFLINE 1\nalice@h\n\nbody").is_err());
    assert!(parse_offline(b"PETREL-OFFLINE 1\nalice@h\nbob@x").is_err());
}

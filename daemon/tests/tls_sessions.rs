//! STARTTLS and smtps end to end over loopback TCP, with certificates made by rcgen.

mod tls_support;

use std::sync::Arc;

use petrel_daemon::tls::{self, ServerVerification};
use tls_support::{Client, Pkis, service_config, start};

fn leaf_der(path: &std::path::Path) -> Vec<u8> {
    tls::load_certs(path).unwrap()[0].to_vec()
}

#[tokio::test]
async fn starttls_upgrades_and_the_session_starts_over() {
    let pkis = Pkis::new();
    let creds = pkis.path("creds");
    std::fs::write(&creds, "alice $6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1\n").unwrap();
    let daemon = start(&format!(
        "{}table creds file:{}\nlisten on 127.0.0.1 tls pki mx.test auth-optional <creds>\n",
        pkis.declarations(),
        creds.display()
    ))
    .await;
    let mut c = Client::connect(daemon.addrs[0]).await;
    let ehlo = c.greet().await;
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH offered before TLS: {ehlo}");

    let info = c.starttls(&pkis.client_tls(None), "mx.test").await.unwrap();
    assert_eq!(info.version, "TLSv1.3");
    assert!(info.cipher.starts_with("TLS_"), "{info}");
    assert!(
        info.to_string().starts_with("version=TLSv1.3:cipher=TLS_"),
        "{info}"
    );

    // RFC 3207 section 4.2: the EHLO from before TLS is forgotten.
    assert!(c.cmd("MAIL FROM:<a@client.test>").await.starts_with("503 "));
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(c.cmd("STARTTLS").await.starts_with("503 "));
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
}

#[tokio::test]
async fn commands_injected_after_starttls_are_never_executed() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 tls pki mx.test\n",
        pkis.declarations()
    ))
    .await;
    let mut c = Client::connect(daemon.addrs[0]).await;
    c.greet().await;
    // CVE-2011-0411: a man in the middle appends a command to the client's STARTTLS.
    c.send(b"STARTTLS\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await, "220 2.0.0 Ready to start TLS\r\n");
    // Nothing after the 220 in plaintext (`upgrade` checks), and the handshake works, so no
    // plaintext reply came before the server's TLS records either.
    c.upgrade(&pkis.client_tls(None), "mx.test").await.unwrap();
    // The first reply inside TLS is the EHLO's: the NOOP was not carried into the session.
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.starts_with("250-mx.test Hello client.test"), "{ehlo}");
    c.send(b"QUIT\r\n").await;
    assert_eq!(c.rest().await, "221 2.0.0 Bye\r\n");
}

#[tokio::test]
async fn tls_require_refuses_mail_before_starttls() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 tls-require pki mx.test\n",
        pkis.declarations()
    ))
    .await;
    let mut c = Client::connect(daemon.addrs[0]).await;
    assert!(c.greet().await.contains("STARTTLS"));
    let reply = c.cmd("MAIL FROM:<a@client.test>").await;
    assert!(reply.starts_with("530 5."), "{reply}");
    c.starttls(&pkis.client_tls(None), "mx.test").await.unwrap();
    c.cmd("EHLO client.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@client.test>").await,
        "250 2.1.0 Sender ok\r\n"
    );
}

#[tokio::test]
async fn smtps_greets_over_tls() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 smtps pki mx.test\n",
        pkis.declarations()
    ))
    .await;
    let (mut c, info) = Client::connect_tls(daemon.addrs[0], &pkis.client_tls(None), "mx.test")
        .await
        .unwrap();
    assert_eq!(info.version, "TLSv1.3");
    let ehlo = c.greet().await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");

    // A plaintext client gets no greeting: the server waits for a TLS ClientHello, and what
    // it gets instead ends the connection.
    let mut plain = Client::connect(daemon.addrs[0]).await;
    plain.send(b"EHLO client.test\r\n").await;
    assert!(!plain.rest().await.contains("220"));
}

#[tokio::test]
async fn sni_picks_the_certificate_among_the_listener_pkis() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 tls pki mx.test pki other.test hostname mx.test\n\
         listen on 127.0.0.1 smtps pki other.test pki mx.test hostname mx.test\n",
        pkis.declarations()
    ))
    .await;
    let mx = leaf_der(&pkis.mx.cert_path);
    let other = leaf_der(&pkis.other.cert_path);
    for (host, expected) in [("other.test", &other), ("mx.test", &mx)] {
        let mut c = Client::connect(daemon.addrs[0]).await;
        c.greet().await;
        let info = c.starttls(&pkis.client_tls(None), host).await.unwrap();
        assert_eq!(info.server_name.as_deref(), Some(host));
        assert_eq!(&c.server_chain()[0], expected, "STARTTLS to {host}");
        // The full chain is served: leaf then CA.
        assert_eq!(c.server_chain().len(), 2);

        let (c, _) = Client::connect_tls(daemon.addrs[1], &pkis.client_tls(None), host)
            .await
            .unwrap();
        assert_eq!(&c.server_chain()[0], expected, "smtps to {host}");
    }
    // A name no pki has (or an IP address, which sends no SNI) gets the listener's
    // host name's pki. An opportunistic client accepts whatever it is given.
    let opportunistic = tls::client_config(ServerVerification::Opportunistic, None).unwrap();
    assert!(!opportunistic.verifies_server());
    for host in ["unknown.test", "127.0.0.1"] {
        let (c, info) = Client::connect_tls(daemon.addrs[1], &opportunistic, host)
            .await
            .unwrap();
        assert!(!info.peer_verified);
        assert_eq!(c.server_chain()[0], mx, "{host}");
    }
}

#[tokio::test]
async fn verified_clients_need_a_certificate_from_the_ca() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 tls-require verify pki mx.test ca testca\n\
         listen on 127.0.0.1 smtps verify pki mx.test ca testca\n",
        pkis.declarations()
    ))
    .await;
    // With a certificate the CA issued: accepted.
    let mut c = Client::connect(daemon.addrs[0]).await;
    c.greet().await;
    c.starttls(&pkis.client_tls(Some(&pkis.client)), "mx.test")
        .await
        .unwrap();
    assert!(c.cmd("EHLO client.test").await.starts_with("250-mx.test"));
    let (mut c, _) = Client::connect_tls(
        daemon.addrs[1],
        &pkis.client_tls(Some(&pkis.client)),
        "mx.test",
    )
    .await
    .unwrap();
    assert!(c.reply().await.starts_with("220 mx.test"));

    // Without a certificate, or with one from another CA: the handshake fails (in TLS 1.3 the
    // client may only learn it at its first read), and no SMTP reply ever comes.
    for identity in [None, Some(&pkis.rogue_client)] {
        let mut c = Client::connect(daemon.addrs[0]).await;
        c.greet().await;
        if c.starttls(&pkis.client_tls(identity), "mx.test")
            .await
            .is_ok()
        {
            // The write may already fail: the server has closed.
            if c.try_send(b"EHLO client.test\r\n").await.is_ok() {
                assert_eq!(c.try_reply().await, None);
            }
        }
        match Client::connect_tls(daemon.addrs[1], &pkis.client_tls(identity), "mx.test").await {
            Err(_) => {}
            Ok((mut c, _)) => assert_eq!(c.try_reply().await, None),
        }
    }
}

#[test]
fn certificate_problems_are_reported_at_start_with_the_file() {
    let pkis = Pkis::new();
    let missing = pkis.path("missing.pem");
    let conf = |cert: &std::path::Path, key: &std::path::Path, listen: &str| {
        format!(
            "pki mx.test cert \"{}\"\npki mx.test key \"{}\"\nca testca cert \"{}\"\n{listen}\n",
            cert.display(),
            key.display(),
            pkis.ca.cert_path.display()
        )
    };
    let listen = "listen on 127.0.0.1 tls pki mx.test";
    let err = service_config(&conf(&missing, &pkis.mx.key_path, listen))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("smtpd.conf:4:1: ")
            && err.contains(&format!("{}: cannot read", missing.display())),
        "{err}"
    );

    let err = service_config(&conf(&pkis.mx.cert_path, &pkis.other.key_path, listen))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: the private key does not match the certificate in {}",
            pkis.other.key_path.display(),
            pkis.mx.cert_path.display()
        )),
        "{err}"
    );

    // A key file given as the certificate, and a certificate given as the key.
    let err = service_config(&conf(&pkis.mx.key_path, &pkis.mx.key_path, listen))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no certificate found"), "{err}");
    let err = service_config(&conf(&pkis.mx.cert_path, &pkis.mx.cert_path, listen))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: no private key found",
            pkis.mx.cert_path.display()
        )),
        "{err}"
    );

    let err = service_config(&conf(
        &pkis.mx.cert_path,
        &pkis.mx.key_path,
        "listen on 127.0.0.1 tls-require verify pki mx.test",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("`verify` needs a `ca NAME`"), "{err}");

    // A listener without `pki` uses the pki named after its host name, which must exist.
    let err = service_config(&conf(
        &pkis.mx.cert_path,
        &pkis.mx.key_path,
        "listen on 127.0.0.1 tls hostname relay.test",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no certificate: declare `pki relay.test"),
        "{err}"
    );
    assert!(
        service_config(&conf(
            &pkis.mx.cert_path,
            &pkis.mx.key_path,
            "listen on 127.0.0.1 smtps hostname mx.test protocols tlsv1.3"
        ))
        .is_ok()
    );
}

#[test]
fn petreld_refuses_to_start_on_a_missing_certificate() {
    let pkis = Pkis::new();
    let missing = pkis.path("missing.pem");
    let conf = pkis.path("smtpd.conf");
    std::fs::write(
        &conf,
        format!(
            "pki mx.test cert \"{}\"\npki mx.test key \"{}\"\nlisten on 127.0.0.1 port 1 tls pki mx.test\n",
            missing.display(),
            pkis.mx.key_path.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_petreld"))
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: cannot read", missing.display())),
        "{stderr}"
    );
}

#[test]
fn keys_in_every_pem_encoding_load() {
    let dir = tempfile::tempdir().unwrap();
    // PKCS#8 is what rcgen writes; SEC1 is made from it below. (PKCS#1 RSA keys go through
    // the same PEM parser; ring cannot generate RSA keys to test them here.)
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["mx.test".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let pkcs8 = dir.path().join("pkcs8.key");
    std::fs::write(&pkcs8, key.serialize_pem()).unwrap();
    let pki = tls::load_pki("MX.test", &cert_path, &pkcs8).unwrap();
    assert_eq!(pki.name, "mx.test");
    // The same key as SEC1 (`BEGIN EC PRIVATE KEY`, what `openssl ecparam -genkey` writes): the
    // PKCS#8 structure wraps it in its last OCTET STRING.
    let sec1 = dir.path().join("sec1.key");
    std::fs::write(
        &sec1,
        pem("EC PRIVATE KEY", &sec1_of_pkcs8(key.serialized_der())),
    )
    .unwrap();
    tls::load_pki("mx.test", &cert_path, &sec1).unwrap();
    let encrypted = dir.path().join("encrypted.key");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = tls::load_pki("mx.test", &cert_path, &encrypted)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is encrypted"), "{err}");
    // A CA bundle with the server's own certificate works as a trust anchor for the client.
    let roots = tls::load_ca(&cert_path).unwrap();
    let client = tls::client_config(ServerVerification::Roots(Arc::new(roots)), None).unwrap();
    assert!(client.verifies_server());
}

/// The ECPrivateKey (SEC1) inside a PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER, SEQUENCE {…},
/// OCTET STRING { ECPrivateKey } }.
fn sec1_of_pkcs8(der: &[u8]) -> Vec<u8> {
    // Returns (header length, content length) of the DER element at the start of `d`.
    fn element(d: &[u8]) -> (usize, usize) {
        match d[1] {
            n if n < 0x80 => (2, n as usize),
            0x81 => (3, d[2] as usize),
            0x82 => (4, (d[2] as usize) << 8 | d[3] as usize),
            _ => panic!("unexpected DER length"),
        }
    }
    let (h, _) = element(der);
    let mut rest = &der[h..];
    for _ in 0..2 {
        let (h, len) = element(rest);
        rest = &rest[h + len..];
    }
    assert_eq!(rest[0], 0x04, "OCTET STRING expected");
    let (h, len) = element(rest);
    rest[h..h + len].to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn the_client_side_verifies_what_it_is_told_to() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 smtps pki mx.test\n",
        pkis.declarations()
    ))
    .await;
    let addr = daemon.addrs[0];
    // Verified against the configured ca, with the right name: accepted and marked verified.
    let (_, info) = Client::connect_tls(addr, &pkis.client_tls(None), "mx.test")
        .await
        .unwrap();
    assert!(info.peer_verified);
    // The right ca but another name: refused.
    let err = Client::connect_tls(addr, &pkis.client_tls(None), "other.test")
        .await
        .err()
        .expect("a certificate for mx.test must not pass as other.test");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    // The public roots do not know the test CA: refused.
    let webpki = tls::client_config(ServerVerification::WebPki, None).unwrap();
    let err = Client::connect_tls(addr, &webpki, "mx.test")
        .await
        .err()
        .expect("the test CA is not a public root");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // Opportunistic: whatever the name, encrypted but not verified.
    let opportunistic = tls::client_config(ServerVerification::Opportunistic, None).unwrap();
    let (mut c, info) = Client::connect_tls(addr, &opportunistic, "other.test")
        .await
        .unwrap();
    assert!(!info.peer_verified);
    assert!(c.reply().await.starts_with("220 mx.test "));
}

#[tokio::test]
async fn protocols_and_ciphers_limit_what_a_listener_offers() {
    let pkis = Pkis::new();
    let daemon = start(&format!(
        "{}listen on 127.0.0.1 smtps pki mx.test protocols \"tlsv1.2\" ciphers \"ECDHE+CHACHA20\"\n",
        pkis.declarations()
    ))
    .await;
    let roots = Arc::new(tls::load_ca(&pkis.ca.cert_path).unwrap());
    let client = |ciphers: &str| {
        let limits = tls::TlsLimits::parse(Some("tlsv1.2"), Some(ciphers)).unwrap();
        tls::client_config_with(ServerVerification::Roots(roots.clone()), None, &limits).unwrap()
    };
    // A client offering only AES-GCM finds nothing in common.
    let refused = Client::connect_tls(daemon.addrs[0], &client("AESGCM"), "mx.test").await;
    assert!(refused.is_err());
    let (mut c, info) = Client::connect_tls(daemon.addrs[0], &client("HIGH"), "mx.test")
        .await
        .unwrap();
    assert_eq!(info.version, "TLSv1.2");
    assert_eq!(info.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305");
    c.greet().await;
    // A TLS 1.3 client is refused too: the listener said TLS 1.2 only.
    let tls13 = tls::client_config_with(
        ServerVerification::Roots(roots.clone()),
        None,
        &tls::TlsLimits::parse(Some("tlsv1.3"), None).unwrap(),
    )
    .unwrap();
    assert!(
        Client::connect_tls(daemon.addrs[0], &tls13, "mx.test")
            .await
            .is_err()
    );
}

#[test]
fn a_cipher_list_that_cannot_work_stops_the_daemon_at_start() {
    let pkis = Pkis::new();
    let conf = |ciphers: &str| {
        format!(
            "{}listen on 127.0.0.1 tls pki mx.test ciphers \"{ciphers}\"\n",
            pkis.declarations()
        )
    };
    let err = service_config(&conf("HIGH:!RC4:NOPE"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("smtpd.conf:6:1: ") && err.contains("unknown cipher or alias \"NOPE\""),
        "{err}"
    );
    let err = service_config(&conf("RC4:3DES")).unwrap_err().to_string();
    assert!(err.contains("selects no cipher suite"), "{err}");
    // `smtp ciphers` is every listener's default.
    let global = format!(
        "smtp ciphers \"ECDHE+FOO\"\n{}listen on 127.0.0.1 tls pki mx.test\n",
        pkis.declarations()
    );
    let err = service_config(&global).unwrap_err().to_string();
    assert!(err.contains("unknown cipher or alias \"FOO\""), "{err}");
}

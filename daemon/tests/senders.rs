//! `listen on … senders <t>`: an authenticated user may only send as the addresses the table
//! lists for it; unauthenticated sessions are not checked.

mod e2e_support;
mod tls_support;

use e2e_support::{free_port, start};
use petrel_daemon::auth::{self, PasswordScheme};
use tls_support::{Client, Pkis, b64};

#[tokio::test]
async fn authenticated_users_send_only_as_their_listed_senders() {
    let pkis = Pkis::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("creds"),
        format!(
            "alice {}\n",
            auth::hash_password("alice-pw", PasswordScheme::Sha512Crypt)
        ),
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "{pki}table creds file:{creds}\n\
         table senders {{ \"alice\" = \"alice@mx.test, @lists.mx.test\" }}\n\
         table everyone {{ \"@\" = \"petrel\" }}\n\
         table accounts {{ \"petrel\" = \"-:-:.\" }}\n\
         listen on 127.0.0.1 port {port} hostname mx.test tls pki mx.test auth-optional <creds> \
           senders <senders>\n\
         action \"local\" maildir \"mail/%{{rcpt.user:lowercase}}\" virtual <everyone> userbase <accounts>\n\
         match from any for domain \"mx.test\" action \"local\"\n",
        pki = pkis.declarations(),
        creds = dir.path().join("creds").display(),
    );
    let d = start(&conf, dir.path(), |_| {}).await;
    let mut c = Client::connect(d.addr).await;
    c.greet().await;
    c.starttls(&pkis.client_tls(None), "mx.test").await.unwrap();
    c.cmd("EHLO client.test").await;
    // Before AUTH nothing is checked.
    assert!(
        c.cmd("MAIL FROM:<anyone@client.test>")
            .await
            .starts_with("250")
    );
    c.cmd("RSET").await;
    let auth = c
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
        .await;
    assert!(auth.starts_with("235"), "{auth}");
    for (sender, allowed) in [
        ("alice@mx.test", true),
        ("alice+tag@mx.test", true),
        ("news@lists.mx.test", true),
        ("bob@mx.test", false),
        ("alice@client.test", false),
        ("", false),
    ] {
        let reply = c.cmd(&format!("MAIL FROM:<{sender}>")).await;
        if allowed {
            assert!(reply.starts_with("250"), "<{sender}>: {reply}");
            c.cmd("RSET").await;
        } else {
            assert!(
                reply.starts_with("530 5.7.1 Sender rejected"),
                "<{sender}>: {reply}"
            );
        }
    }
    d.engine.shutdown().await;
}

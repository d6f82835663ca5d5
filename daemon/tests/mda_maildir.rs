//! Maildir delivery against real directories.

mod mda_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use mda_support::*;
use petrel_daemon::mda::{
    DeliveryRequest, MaildirJob, Method, Options, Outcome, Recipient, deliver,
    deliver_maildir_batch,
};

fn maildir(path: &Path, junk: bool) -> Method {
    Method::Maildir {
        path: path.to_owned(),
        junk,
    }
}

async fn deliver_one(sender: &str, message: &[u8], rcpt: &Recipient, method: &Method) -> Outcome {
    let outcomes = deliver(DeliveryRequest::new(
        sender,
        message,
        std::slice::from_ref(rcpt),
        method,
    ))
    .await;
    assert_eq!(outcomes.len(), 1);
    outcomes.into_iter().next().unwrap()
}

fn expected(sender: &str, delivered_to: &str, body: &[u8]) -> Vec<u8> {
    let mut want = format!("Return-Path: <{sender}>\nDelivered-To: {delivered_to}\n").into_bytes();
    want.extend_from_slice(body);
    want
}

#[tokio::test]
async fn creates_the_maildir_and_writes_the_message_with_lf_and_trace_fields() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("mail/deep/Maildir");
    let rcpt = rcpt("bob@example.org", virtual_user(home.path()));
    let outcome = deliver_one("alice@example.org", MESSAGE, &rcpt, &maildir(&root, false)).await;
    assert_eq!(outcome, Outcome::Delivered);

    for sub in ["tmp", "new", "cur"] {
        let meta = std::fs::metadata(root.join(sub)).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{sub}");
    }
    assert!(files_in(&root.join("tmp")).is_empty(), "tmp/ must be empty");
    assert!(files_in(&root.join("cur")).is_empty());
    let new = files_in(&root.join("new"));
    assert_eq!(new.len(), 1);
    let content = std::fs::read(&new[0]).unwrap();
    let want = expected("alice@example.org", "bob@example.org", &message_lf());
    assert_eq!(content, want);
    assert!(!content.contains(&b'\r'));

    let meta = std::fs::metadata(&new[0]).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let name = new[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with(&format!(",S={}", want.len())), "{name}");
    assert!(!name.contains(':') && !name.contains('/'), "{name}");
}

#[tokio::test]
async fn null_sender_and_original_recipient() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    let mut rcpt = rcpt("bob@example.org", virtual_user(home.path()));
    rcpt.original = Some("postmaster@example.org".into());
    let outcome = deliver_one("", MESSAGE, &rcpt, &maildir(&root, false)).await;
    assert_eq!(outcome, Outcome::Delivered);
    let content = std::fs::read(&files_in(&root.join("new"))[0]).unwrap();
    assert_eq!(
        content,
        expected("", "postmaster@example.org", &message_lf())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_get_unique_names() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    let method = maildir(&root, false);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (home, method) = (home.path().to_owned(), method.clone());
        tasks.push(tokio::spawn(async move {
            let rcpt = rcpt("bob@example.org", virtual_user(&home));
            let message = format!("Subject: {i}\r\n\r\nmessage {i}\r\n");
            deliver_one("alice@example.org", message.as_bytes(), &rcpt, &method).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::Delivered);
    }
    let new = files_in(&root.join("new"));
    assert_eq!(new.len(), 64);
    let mut seen: Vec<usize> = new
        .iter()
        .map(|f| {
            let content = String::from_utf8(std::fs::read(f).unwrap()).unwrap();
            let body = content.rsplit("message ").next().unwrap();
            body.trim().parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
}

#[tokio::test]
async fn junk_goes_to_the_junk_folder() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    let rcpt = rcpt("bob@example.org", virtual_user(home.path()));
    let spam = b"Subject: cheap\r\nX-Spam: Yes\r\n\r\nbuy\r\n";
    let ham = b"Subject: lunch\r\n\r\nX-Spam: yes\r\n";

    assert!(
        deliver_one("a@b.c", spam, &rcpt, &maildir(&root, true))
            .await
            .is_delivered()
    );
    assert!(
        deliver_one("a@b.c", ham, &rcpt, &maildir(&root, true))
            .await
            .is_delivered()
    );
    // Without the junk option spam stays in the inbox.
    assert!(
        deliver_one("a@b.c", spam, &rcpt, &maildir(&root, false))
            .await
            .is_delivered()
    );

    let junk = files_in(&root.join(".Junk/new"));
    assert_eq!(junk.len(), 1);
    assert!(
        std::fs::read_to_string(&junk[0])
            .unwrap()
            .contains("Subject: cheap")
    );
    for sub in ["tmp", "cur"] {
        assert!(root.join(".Junk").join(sub).is_dir());
    }
    assert_eq!(files_in(&root.join("new")).len(), 2);
}

#[tokio::test]
async fn sub_address_folder_when_it_exists() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    std::fs::create_dir_all(root.join(".lists")).unwrap();
    let mut lists = rcpt("bob+lists@example.org", virtual_user(home.path()));
    lists.extension = Some("lists".into());
    let mut other = rcpt("bob+other@example.org", virtual_user(home.path()));
    other.extension = Some("other".into());
    let mut parent = rcpt("bob+.@example.org", virtual_user(home.path()));
    parent.extension = Some(".".into());
    let recipients = [lists, other, parent];
    let method = maildir(&root, false);
    let outcomes = deliver(DeliveryRequest::new("a@b.c", MESSAGE, &recipients, &method)).await;
    assert!(outcomes.iter().all(Outcome::is_delivered), "{outcomes:?}");
    assert_eq!(files_in(&root.join(".lists/new")).len(), 1);
    assert!(!root.join(".other").exists());
    assert_eq!(files_in(&root.join("new")).len(), 2);
    assert!(!home.path().join("mail").exists() && !home.path().join("new").exists());
}

#[tokio::test]
async fn several_recipients_get_their_own_copy() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    let recipients = [
        rcpt("bob@example.org", virtual_user(home.path())),
        rcpt("robert@example.org", virtual_user(home.path())),
    ];
    let method = maildir(&root, false);
    let outcomes = deliver(DeliveryRequest::new("a@b.c", MESSAGE, &recipients, &method)).await;
    assert_eq!(outcomes, vec![Outcome::Delivered, Outcome::Delivered]);
    let mut delivered_to: Vec<String> = files_in(&root.join("new"))
        .iter()
        .map(|f| {
            let c = std::fs::read_to_string(f).unwrap();
            c.lines().nth(1).unwrap().to_owned()
        })
        .collect();
    delivered_to.sort();
    assert_eq!(
        delivered_to,
        [
            "Delivered-To: bob@example.org",
            "Delivered-To: robert@example.org"
        ]
    );
}

#[tokio::test]
async fn batch_of_messages_and_maildirs() {
    let home = tempfile::tempdir().unwrap();
    let bob = rcpt("bob@example.org", virtual_user(home.path()));
    let carol = rcpt("carol@example.org", virtual_user(home.path()));
    let (bob_dir, carol_dir) = (home.path().join("bob"), home.path().join("carol"));
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    let spam = b"X-Spam: yes\r\n\r\nspam\r\n".to_vec();
    let mut jobs = Vec::new();
    for m in &messages {
        jobs.push(MaildirJob {
            sender: "a@b.c",
            message: m,
            recipient: &bob,
            path: &bob_dir,
            junk: false,
        });
        jobs.push(MaildirJob {
            sender: "",
            message: m,
            recipient: &carol,
            path: &carol_dir,
            junk: true,
        });
    }
    jobs.push(MaildirJob {
        sender: "",
        message: &spam,
        recipient: &carol,
        path: &carol_dir,
        junk: true,
    });
    jobs.push(MaildirJob {
        sender: "",
        message: &spam,
        recipient: &bob,
        path: Path::new("relative/Maildir"),
        junk: false,
    });
    let outcomes = deliver_maildir_batch(&jobs, &Options::default()).await;
    assert_eq!(outcomes.len(), 8);
    assert!(
        outcomes[..7].iter().all(Outcome::is_delivered),
        "{outcomes:?}"
    );
    assert!(matches!(&outcomes[7], Outcome::Permanent(r) if r.contains("not absolute")));

    let bodies = |dir: &Path| {
        let mut b: Vec<String> = files_in(dir)
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        b.sort();
        b
    };
    let bob_files = bodies(&bob_dir.join("new"));
    assert_eq!(bob_files.len(), 3);
    for (i, content) in bob_files.iter().enumerate() {
        assert_eq!(
            content,
            &format!(
                "Return-Path: <a@b.c>\nDelivered-To: bob@example.org\nSubject: {i}\n\nbody {i}\n"
            )
        );
    }
    assert_eq!(bodies(&carol_dir.join("new")).len(), 3);
    assert_eq!(bodies(&carol_dir.join(".Junk/new")).len(), 1);
}

#[tokio::test]
async fn permanent_failures() {
    let home = tempfile::tempdir().unwrap();
    let user = virtual_user(home.path());

    // A loop: the message was delivered to this recipient before.
    let looped = b"Delivered-To: bob@example.org\r\nSubject: x\r\n\r\nx\r\n";
    let root = home.path().join("Maildir");
    let r = deliver_one(
        "a@b.c",
        looped,
        &rcpt("bob@example.org", user.clone()),
        &maildir(&root, false),
    )
    .await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("loop")),
        "{r:?}"
    );
    assert!(!root.exists());

    // The home directory is gone.
    let gone = home.path().join("gone");
    let mut ghost = user.clone();
    ghost.home = gone.clone();
    let r = deliver_one(
        "a@b.c",
        MESSAGE,
        &rcpt("bob@example.org", ghost),
        &maildir(&gone.join("Maildir"), false),
    )
    .await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("home directory")),
        "{r:?}"
    );

    // A file where a directory should be.
    let file = home.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let r = deliver_one(
        "a@b.c",
        MESSAGE,
        &rcpt("bob@example.org", user.clone()),
        &maildir(&file.join("Maildir"), false),
    )
    .await;
    assert!(matches!(&r, Outcome::Permanent(_)), "{r:?}");

    // A relative path.
    let r = deliver_one(
        "a@b.c",
        MESSAGE,
        &rcpt("bob@example.org", user),
        &maildir(Path::new("Maildir"), false),
    )
    .await;
    assert!(
        matches!(&r, Outcome::Permanent(m) if m.contains("not absolute")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_repeated_delivery_with_a_stable_name_keeps_one_copy() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("Maildir");
    let mut bob = rcpt("bob@example.org", virtual_user(home.path()));
    bob.unique = Some("1700000000.M5E0123456700000000".into());
    let method = maildir(&root, false);
    // The queue repeats a delivery it could not record (a crash): the first copy stays.
    for _ in 0..3 {
        let outcome = deliver_one("alice@example.org", MESSAGE, &bob, &method).await;
        assert_eq!(outcome, Outcome::Delivered);
    }
    let new = files_in(&root.join("new"));
    assert_eq!(new.len(), 1);
    let name = new[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("1700000000.M5E0123456700000000.") && name.contains(",S="),
        "{name}"
    );
    assert!(files_in(&root.join("tmp")).is_empty());
    // Another envelope, another file; a name that could leave the folder is not used.
    let mut carol = rcpt("carol@example.org", virtual_user(home.path()));
    carol.unique = Some("../../escape".into());
    assert_eq!(
        deliver_one("alice@example.org", MESSAGE, &carol, &method).await,
        Outcome::Delivered
    );
    let new = files_in(&root.join("new"));
    assert_eq!(new.len(), 2);
    assert!(!home.path().join("escape").exists());
}

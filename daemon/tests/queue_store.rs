//! The queue store: commit, recovery, updates, removal, and the durability promise under a
//! simulated crash.

#[path = "support/memfs.rs"]
mod memfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memfs::MemFs;
use petrel_core::Time;
use petrel_core::queue::{Envelope, EnvelopeId, MsgId};
use petrel_daemon::queue::{Inline, RealFs, Store, StoreError, TokioBlocking};

fn envelope(msg: MsgId, n: u32, rcpt: &str) -> Envelope {
    Envelope::new(
        EnvelopeId::new(msg, n),
        "alice@example.org",
        rcpt,
        Time::from_secs(1_700_000_000),
        Time::from_secs(1_700_345_600),
    )
}

fn root() -> PathBuf {
    PathBuf::from("/q")
}

async fn open(fs: &MemFs) -> (Store<MemFs, Inline>, Vec<petrel_daemon::queue::Recovered>) {
    Store::open(Arc::new(fs.clone()), Inline, root(), 42)
        .await
        .unwrap()
}

#[tokio::test]
async fn committed_messages_survive_a_crash_and_uncommitted_ones_vanish() {
    let fs = MemFs::default();
    let (store, recovered) = open(&fs).await;
    assert!(recovered.is_empty());

    let mut a = store.begin();
    a.write(b"Subject: one\r\n\r\nbody\r\n").await;
    let msg_a = a.msg();
    let envs = vec![
        envelope(msg_a, 0, "b@example.net"),
        envelope(msg_a, 1, "c@example.net"),
    ];
    assert_eq!(a.commit(&envs).await.unwrap(), msg_a);

    let mut b = store.begin();
    b.write(b"Subject: two, never committed\r\n").await;
    let msg_b = b.msg();
    assert_ne!(msg_a, msg_b);
    // The session is cut before its commit: the content must not survive.
    std::mem::forget(b);

    fs.crash();
    let (store, recovered) = open(&fs).await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].msg, msg_a);
    assert_eq!(recovered[0].envelopes, envs);
    assert_eq!(
        store.read_content(msg_a).await.unwrap(),
        b"Subject: one\r\n\r\nbody\r\n"
    );
    assert!(fs.list(&root().join("incoming")).is_empty());
}

#[tokio::test]
async fn updates_replace_envelopes_and_survive_a_crash() {
    let fs = MemFs::default();
    let (store, _) = open(&fs).await;
    let mut inc = store.begin();
    inc.write(b"x\r\n").await;
    let msg = inc.msg();
    let mut envs = vec![
        envelope(msg, 0, "b@example.net"),
        envelope(msg, 1, "c@example.net"),
    ];
    inc.commit(&envs).await.unwrap();

    // b was delivered; c failed once.
    envs.remove(0);
    envs[0].attempts = 1;
    envs[0].last_error = Some("451 4.7.1 greylisted".into());
    store.update(msg, &envs).await.unwrap();
    fs.crash();
    let (store, recovered) = open(&fs).await;
    assert_eq!(recovered[0].envelopes, envs);

    store.remove(msg).await.unwrap();
    fs.crash();
    let (_, recovered) = open(&fs).await;
    assert!(recovered.is_empty());
    assert!(fs.list(&root().join("envelopes")).is_empty());
}

#[tokio::test]
async fn large_messages_spill_to_disk_and_abandoned_ones_are_removed() {
    let fs = MemFs::default();
    let (store, _) = open(&fs).await;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut inc = store.begin();
    for chunk in big.chunks(65_536) {
        inc.write(chunk).await;
    }
    assert_eq!(inc.len(), big.len());
    let msg = inc.msg();
    assert!(
        !fs.list(&root().join("incoming")).is_empty(),
        "content should have spilled"
    );
    inc.commit(&[envelope(msg, 0, "b@example.net")])
        .await
        .unwrap();
    assert_eq!(store.read_content(msg).await.unwrap(), big);

    let mut dropped = store.begin();
    for chunk in big.chunks(65_536) {
        dropped.write(chunk).await;
    }
    drop(dropped);
    assert!(fs.list(&root().join("incoming")).is_empty());
}

#[tokio::test]
async fn a_damaged_message_file_is_reported_not_delivered() {
    let fs = MemFs::default();
    let (store, _) = open(&fs).await;
    let mut inc = store.begin();
    inc.write(b"content\r\n").await;
    let msg = inc.msg();
    inc.commit(&[envelope(msg, 0, "b@example.net")])
        .await
        .unwrap();
    fs.corrupt(&root().join("messages").join(msg.to_string()), b"truncated");
    let err = Store::open(Arc::new(fs.clone()), Inline, root(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_commits_share_directory_syncs() {
    let fs = MemFs::default();
    let (store, _) = open(&fs).await;
    let before = fs.syncs();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut inc = store.begin();
            inc.write(format!("message {i}\r\n").as_bytes()).await;
            let msg = inc.msg();
            inc.commit(&[envelope(msg, 0, "b@example.net")])
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let syncs = fs.syncs() - before;
    // One file sync per message, and fewer directory syncs than messages.
    assert!((51..100).contains(&syncs), "{syncs} syncs for 50 messages");
    fs.crash();
    let (_, recovered) = open(&fs).await;
    assert_eq!(recovered.len(), 50);
}

#[tokio::test]
async fn works_on_the_real_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let root: &Path = dir.path();
    let (store, _) = Store::open(Arc::new(RealFs), TokioBlocking, root.join("queue"), 7)
        .await
        .unwrap();
    let mut inc = store.begin();
    inc.write(b"hello\r\n").await;
    let msg = inc.msg();
    inc.commit(&[envelope(msg, 0, "b@example.net")])
        .await
        .unwrap();
    drop(store);
    let (store, recovered) = Store::open(Arc::new(RealFs), TokioBlocking, root.join("queue"), 8)
        .await
        .unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(store.read_content(msg).await.unwrap(), b"hello\r\n");
}

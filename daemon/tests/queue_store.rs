//! The queue store: commit, recovery, updates, removal, and the durability promise under a
//! simulated crash.

#[path = "support/memfs.rs"]
mod memfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memfs::MemFs;
use petrel_core::Time;
use petrel_core::queue::{Envelope, EnvelopeId, MsgId};
use petrel_daemon::queue::{Fs, Inline, RealFs, Sealing, Store, TokioBlocking};

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
async fn a_damaged_message_file_is_moved_aside_not_delivered() {
    let fs = MemFs::default();
    let (store, _) = open(&fs).await;
    let mut keep = store.begin();
    keep.write(b"content\r\n").await;
    let kept = keep.msg();
    keep.commit(&[envelope(kept, 0, "a@example.net")])
        .await
        .unwrap();
    let mut inc = store.begin();
    inc.write(b"content\r\n").await;
    let msg = inc.msg();
    inc.commit(&[envelope(msg, 0, "b@example.net")])
        .await
        .unwrap();
    fs.corrupt(&root().join("messages").join(msg.to_string()), b"truncated");
    // The start goes on with the other messages; the damaged one waits in corrupt/.
    let (_, recovered) = open(&fs).await;
    assert_eq!(
        recovered.iter().map(|r| r.msg).collect::<Vec<_>>(),
        vec![kept]
    );
    assert_eq!(fs.list(&root().join("corrupt")), vec![msg.to_string()]);
}

/// Every combination of `queue compression` and `queue encryption`.
fn sealings() -> Vec<Sealing> {
    vec![
        Sealing::compressed(),
        Sealing::with_key(false, [1; 32]),
        Sealing::with_key(true, [1; 32]),
    ]
}

async fn open_sealed(
    fs: &MemFs,
    sealing: &Sealing,
) -> (Store<MemFs, Inline>, Vec<petrel_daemon::queue::Recovered>) {
    Store::open_sealed(Arc::new(fs.clone()), Inline, root(), 42, sealing.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sealed_queue_round_trips_small_and_spilled_messages_across_a_crash() {
    for sealing in sealings() {
        let fs = MemFs::default();
        let (store, _) = open_sealed(&fs, &sealing).await;
        let small = b"Subject: small\r\n\r\nsecret words\r\n".to_vec();
        // Larger than what is kept in memory: written (and sealed) as it arrives.
        let large: Vec<u8> = (0..700_000u32)
            .map(|i| b"Subject: large secret words\r\n"[(i % 29) as usize])
            .collect();
        let mut ids = Vec::new();
        for content in [&small, &large] {
            let mut inc = store.begin();
            for piece in content.chunks(65_000) {
                inc.write(piece).await;
            }
            let msg = inc.msg();
            inc.commit(&[
                envelope(msg, 0, "b@example.net"),
                envelope(msg, 1, "c@example.net"),
            ])
            .await
            .unwrap();
            ids.push(msg);
        }
        // Envelope updates are sealed too.
        let mut changed = envelope(ids[0], 1, "c@example.net");
        changed.attempts = 3;
        store.update(ids[0], &[changed.clone()]).await.unwrap();
        fs.crash();
        let (store, mut recovered) = open_sealed(&fs, &sealing).await;
        recovered.sort_by_key(|r| ids.iter().position(|i| *i == r.msg));
        assert_eq!(recovered.len(), 2, "{sealing:?}");
        assert_eq!(recovered[0].envelopes, vec![changed]);
        assert_eq!(recovered[1].envelopes.len(), 2);
        assert_eq!(store.read_content(ids[0]).await.unwrap(), small);
        assert_eq!(store.read_content(ids[1]).await.unwrap(), large);
        if sealing.encrypts() {
            for dir in ["messages", "envelopes"] {
                for name in fs.list(&root().join(dir)) {
                    let data = fs.read(&root().join(dir).join(&name)).unwrap();
                    assert!(
                        !data
                            .windows(12)
                            .any(|w| w == b"secret words" || w == b"b@example.ne"),
                        "{dir}/{name} shows its content"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn tampered_truncated_or_planted_files_are_never_recovered() {
    let sealing = Sealing::with_key(true, [4; 32]);
    let fs = MemFs::default();
    let (store, _) = open_sealed(&fs, &sealing).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut inc = store.begin();
        inc.write(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
            .await;
        let msg = inc.msg();
        inc.commit(&[envelope(msg, 0, "b@example.net")])
            .await
            .unwrap();
        ids.push(msg);
    }
    store
        .update(ids[3], &[envelope(ids[3], 0, "b@example.net")])
        .await
        .unwrap();
    let path = |dir: &str, msg: MsgId| root().join(dir).join(msg.to_string());
    // One byte changed in the middle of a message.
    let mut data = fs.read(&path("messages", ids[0])).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 1;
    fs.corrupt(&path("messages", ids[0]), &data);
    // A message cut short.
    let data = fs.read(&path("messages", ids[1])).unwrap();
    fs.corrupt(&path("messages", ids[1]), &data[..data.len() - 10]);
    // A message replaced by a plain one, as anyone able to write the folder could.
    fs.corrupt(
        &path("messages", ids[2]),
        b"Subject: planted\r\n\r\nPETRELQ1 00000000000000000020 00000000000000000000\n",
    );
    // An envelopes file moved over from another message.
    let other = fs.read(&path("envelopes", ids[3])).unwrap();
    let mut inc = store.begin();
    inc.write(b"Subject: five\r\n\r\n").await;
    let fifth = inc.msg();
    inc.commit(&[envelope(fifth, 0, "b@example.net")])
        .await
        .unwrap();
    drop(store);
    let mut w = fs.create(&path("envelopes", fifth)).unwrap();
    std::io::Write::write_all(&mut w, &other).unwrap();
    drop(w);
    let (_, recovered) = open_sealed(&fs, &sealing).await;
    assert_eq!(
        recovered.iter().map(|r| r.msg).collect::<Vec<_>>(),
        vec![ids[3]]
    );
    let mut moved = fs.list(&root().join("corrupt"));
    moved.sort();
    let mut expected: Vec<String> = [ids[0], ids[1], ids[2], fifth]
        .iter()
        .map(ToString::to_string)
        .collect();
    expected.push(format!("{fifth}.envelopes"));
    expected.sort();
    assert_eq!(moved, expected);
}

#[tokio::test]
async fn a_compressed_queue_reads_its_files_after_compression_is_turned_off() {
    let fs = MemFs::default();
    let (store, _) = open_sealed(&fs, &Sealing::compressed()).await;
    let mut inc = store.begin();
    inc.write(b"Subject: x\r\n\r\nbody\r\n").await;
    let msg = inc.msg();
    inc.commit(&[envelope(msg, 0, "b@example.net")])
        .await
        .unwrap();
    drop(store);
    let (store, recovered) = open(&fs).await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        store.read_content(msg).await.unwrap(),
        b"Subject: x\r\n\r\nbody\r\n"
    );
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

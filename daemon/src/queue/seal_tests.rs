use super::*;

fn all_kinds() -> Vec<Sealing> {
    vec![
        Sealing::plain(),
        Sealing::compressed(),
        Sealing::with_key(false, [7; 32]),
        Sealing::with_key(true, [7; 32]),
    ]
}

/// Bytes that compress a little: text with some noise.
fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 {
                (x % 251) as u8
            } else {
                b"hello queue "[i % 12]
            }
        })
        .collect()
}

#[test]
fn every_kind_round_trips_at_frame_boundaries() {
    for s in all_kinds() {
        for len in [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME, 300_001] {
            let data = sample(len);
            let sealed = s.seal("m1", &data);
            assert_eq!(s.open("m1", &sealed).unwrap(), data, "{s:?} {len}");
        }
    }
}

#[test]
fn streamed_writes_in_odd_pieces_read_back_whole() {
    let s = Sealing::with_key(true, [1; 32]);
    let data = sample(5 * FRAME + 17);
    let mut w = s.writer("m2", Vec::new()).unwrap();
    for piece in data.chunks(4093) {
        w.write_all(piece).unwrap();
    }
    let sealed = w.finish().unwrap();
    assert_eq!(s.open("m2", &sealed).unwrap(), data);
}

#[test]
fn compression_shrinks_text_and_encryption_hides_it() {
    let text = b"Subject: hello\r\n\r\n".repeat(1000);
    let compressed = Sealing::compressed().seal("m", &text);
    assert!(compressed.len() < text.len() / 10, "{}", compressed.len());
    let encrypted = Sealing::with_key(false, [3; 32]).seal("m", &text);
    assert!(!encrypted.windows(14).any(|w| w == b"Subject: hello"));
    // Two seals of the same bytes differ: fresh salt and nonces.
    assert_ne!(
        encrypted,
        Sealing::with_key(false, [3; 32]).seal("m", &text)
    );
}

#[test]
fn any_changed_byte_of_an_encrypted_file_is_detected() {
    for s in [
        Sealing::with_key(false, [9; 32]),
        Sealing::with_key(true, [9; 32]),
    ] {
        let data = sample(200);
        let sealed = s.seal("m3", &data);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(
                s.open("m3", &bad).is_err(),
                "{s:?}: byte {i} changed unnoticed"
            );
        }
    }
}

#[test]
fn a_truncated_file_is_refused_at_every_length() {
    for s in all_kinds() {
        let data = sample(2 * FRAME + 100);
        let sealed = s.seal("m4", &data);
        // Every length short of the whole, frame boundaries included.
        for cut in (0..sealed.len()).step_by(97).chain([sealed.len() - 1]) {
            assert!(s.open("m4", &sealed[..cut]).is_err(), "{s:?}: cut at {cut}");
        }
    }
}

#[test]
fn frames_cannot_be_dropped_or_reordered_and_files_cannot_move() {
    let s = Sealing::with_key(false, [5; 32]);
    let data = sample(3 * FRAME);
    let sealed = s.seal("m5", &data);
    // The header, then frames of 4 + 12 + FRAME + 16 bytes.
    let header = 8 + 1 + 16;
    let frame = 4 + 12 + FRAME + 16;
    let (head, frames) = sealed.split_at(header);
    let f: Vec<&[u8]> = frames.chunks(frame).collect();
    let mut swapped = head.to_vec();
    for i in [1, 0, 2, 3] {
        swapped.extend_from_slice(f[i]);
    }
    assert_eq!(s.open("m5", &swapped), Err(SealError::Tampered(0)));
    let mut dropped = head.to_vec();
    for i in [0, 2, 3] {
        dropped.extend_from_slice(f[i]);
    }
    assert_eq!(s.open("m5", &dropped), Err(SealError::Tampered(1)));
    // The same file under another message's name.
    assert_eq!(s.open("m6", &sealed), Err(SealError::Tampered(0)));
    // Another key.
    let other = Sealing::with_key(false, [6; 32]);
    assert_eq!(other.open("m5", &sealed), Err(SealError::Tampered(0)));
}

#[test]
fn an_encrypted_queue_refuses_files_it_did_not_encrypt() {
    let encrypted = Sealing::with_key(true, [2; 32]);
    for s in [Sealing::plain(), Sealing::compressed()] {
        let sealed = s.seal("m7", b"Subject: planted\r\n\r\nhi\r\n");
        assert!(matches!(
            encrypted.open("m7", &sealed),
            Err(SealError::Format(_))
        ));
    }
    let sealed = encrypted.seal("m7", b"x");
    assert!(matches!(
        Sealing::compressed().open("m7", &sealed),
        Err(SealError::Format(_))
    ));
}

#[test]
fn the_key_file_checks_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let first = Sealing::for_queue(
        &crate::queue::RealFs,
        dir.path(),
        true,
        Some("correct horse"),
    )
    .unwrap();
    let sealed = first.seal("m8", b"content");
    let again = Sealing::for_queue(
        &crate::queue::RealFs,
        dir.path(),
        true,
        Some("correct horse"),
    )
    .unwrap();
    assert_eq!(again.open("m8", &sealed).unwrap(), b"content");
    assert!(matches!(
        Sealing::for_queue(
            &crate::queue::RealFs,
            dir.path(),
            true,
            Some("battery staple")
        ),
        Err(KeyError::WrongKey)
    ));
    assert!(matches!(
        Sealing::for_queue(&crate::queue::RealFs, dir.path(), true, Some("")),
        Err(KeyError::Empty)
    ));
    std::fs::write(dir.path().join("encryption"), b"garbage").unwrap();
    assert!(matches!(
        Sealing::for_queue(
            &crate::queue::RealFs,
            dir.path(),
            true,
            Some("correct horse")
        ),
        Err(KeyError::Damaged(_))
    ));
    assert!(
        Sealing::for_queue(&crate::queue::RealFs, dir.path(), true, None)
            .unwrap()
            .open("m8", &sealed)
            .is_err()
    );
}

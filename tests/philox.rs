//! Philox4x32-10 against the known-answer vectors published with Random123
//! (`kat_vectors`, the three `philox4x32 10` lines: counter, key, output).

use netrun::philox::{key_for, philox4x32_10, Stream};

#[test]
fn philox4x32_10_known_answers() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0; 4],
            [0; 2],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(
            philox4x32_10(ctr, key),
            want,
            "counter {ctr:08x?} key {key:08x?}"
        );
    }
}

#[test]
fn stream_elements_are_independent_of_how_they_are_split() {
    let s = Stream {
        key: key_for(7, "drop1"),
        iteration: 3,
    };
    let mut whole = vec![0.0; 37];
    s.fill(0, &mut whole);
    let mut parts = vec![0.0; 37];
    let (a, b) = parts.split_at_mut(10);
    s.fill(0, a);
    s.fill(10, b);
    assert_eq!(whole, parts);
    assert!(whole.iter().all(|&u| (0.0..1.0).contains(&u)));
    let mean = whole.iter().sum::<f32>() / whole.len() as f32;
    assert!((0.25..0.75).contains(&mean), "{mean}");
    // Another iteration or another layer gives another stream.
    let mut other = vec![0.0; 37];
    Stream { iteration: 4, ..s }.fill(0, &mut other);
    assert_ne!(whole, other);
    Stream {
        key: key_for(7, "drop2"),
        ..s
    }
    .fill(0, &mut other);
    assert_ne!(whole, other);
}

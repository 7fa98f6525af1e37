//! Caffe `Datum` wire format: encode → decode round trips and hand-assembled bytes.

use netrun::data::datum::Datum;

#[test]
fn raw_datum_round_trips() {
    let d = Datum {
        channels: 2,
        height: 3,
        width: 4,
        data: (0..24).map(|i| (i * 10) as u8).collect(),
        label: 7,
        float_data: vec![],
        encoded: false,
    };
    assert_eq!(Datum::decode(&d.encode()).unwrap(), d);
}

#[test]
fn negative_label_float_data_and_encoded_round_trip() {
    let d = Datum {
        channels: 1,
        height: 1,
        width: 3,
        data: vec![],
        label: -5,
        float_data: vec![0.5, -1.25, 3.0e7],
        encoded: true,
    };
    let bytes = d.encode();
    assert_eq!(Datum::decode(&bytes).unwrap(), d);
}

#[test]
fn large_data_length_uses_a_multi_byte_varint() {
    // 300 bytes of data: the length 300 = 0b10_0101100 needs two varint bytes.
    let d = Datum {
        channels: 3,
        height: 10,
        width: 10,
        data: vec![9; 300],
        label: 1,
        ..Datum::default()
    };
    let bytes = d.encode();
    // channels, height, width tags and values: 3 × 2 bytes, then tag 4|LEN = 0x22.
    assert_eq!(bytes[6], 0x22);
    assert_eq!(&bytes[7..9], &[0xAC, 0x02]);
    assert_eq!(Datum::decode(&bytes).unwrap(), d);
}

#[test]
fn encoding_matches_protobuf_wire_format() {
    let d = Datum {
        channels: 1,
        height: 2,
        width: 1,
        data: vec![0xAA, 0xBB],
        label: -1,
        float_data: vec![1.0],
        encoded: true,
    };
    // field 1..3 varints (tag = field << 3 | 0), field 4 bytes (tag 0x22),
    // label -1 as ten-byte sign-extended varint, field 6 fixed32 (tag 0x35),
    // 1.0f32 = 0x3F800000 little-endian, field 7 varint true.
    let mut want = vec![0x08, 1, 0x10, 2, 0x18, 1, 0x22, 2, 0xAA, 0xBB, 0x28];
    want.extend([0xFF; 9]);
    want.push(0x01);
    want.extend([0x35, 0x00, 0x00, 0x80, 0x3F, 0x38, 0x01]);
    assert_eq!(d.encode(), want);
}

#[test]
fn decodes_packed_float_data_and_skips_unknown_fields() {
    let bytes = [
        0x08, 3, // channels 3
        0x32, 8, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, // packed float_data [1.0, 2.0]
        0x48, 0x96, 0x01, // unknown field 9, varint 150
        0x52, 2, 1, 2, // unknown field 10, 2 bytes
        0x5D, 1, 2, 3, 4, // unknown field 11, fixed32
        0x35, 0, 0, 0x40, 0x40, // unpacked float_data 3.0
    ];
    let d = Datum::decode(&bytes).unwrap();
    assert_eq!(d.channels, 3);
    assert_eq!(d.float_data, vec![1.0, 2.0, 3.0]);
    assert!(!d.encoded);
}

#[test]
fn truncated_and_malformed_bytes_are_errors() {
    let d = Datum {
        channels: 1,
        height: 2,
        width: 2,
        data: vec![1, 2, 3, 4],
        ..Datum::default()
    };
    let bytes = d.encode();
    let err = Datum::decode(&bytes[..9]).unwrap_err();
    assert!(
        err.contains("field at byte 8 needs 4 bytes but only 1 remain"),
        "{err}"
    );
    let err = Datum::decode(&[0x08]).unwrap_err();
    assert!(err.contains("truncated varint at byte 1"), "{err}");
    // channels (field 1) written as length-delimited.
    let err = Datum::decode(&[0x0A, 0]).unwrap_err();
    assert!(err.contains("field 1 at byte 0 has wire type 2"), "{err}");
    let err = Datum::decode(&[0x32, 3, 0, 0, 0]).unwrap_err();
    assert!(err.contains("not a multiple of 4"), "{err}");
}

#[test]
fn sample_shape_checks_raw_sizes() {
    let mut d = Datum {
        channels: 1,
        height: 2,
        width: 3,
        data: vec![0; 6],
        ..Datum::default()
    };
    assert_eq!(d.sample_shape(None).unwrap(), [1, 2, 3]);
    d.data.pop();
    let err = d.sample_shape(None).unwrap_err();
    assert_eq!(err, "is 1x2x3 = 6 values but holds 5 data bytes");
    d.float_data = vec![0.0; 6];
    assert_eq!(d.sample_shape(None).unwrap(), [1, 2, 3]);
    d.height = 0;
    assert_eq!(d.sample_shape(None).unwrap_err(), "has shape 1x0x3");
}

//! A net whose blobs cannot fit in this machine's memory is refused by the
//! commands that build it (`time` here; `train`, `test` and `forward` build
//! through the same `Net::new`) before they allocate, naming the largest blob
//! and its layer, instead of dying in the allocator.

use std::process::Command;

const HUGE: &str = r#"name: "huge"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 1 dim: 200000 dim: 200000 } } }
layer { name: "act" type: "ReLU" bottom: "data" top: "act" }
"#;

#[test]
fn time_refuses_a_net_larger_than_memory_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("huge.prototxt");
    std::fs::write(&net, HUGE).unwrap();
    for phase in ["TRAIN", "TEST"] {
        let args = [
            "time".as_ref(),
            net.as_os_str(),
            "--iterations".as_ref(),
            "1".as_ref(),
            "--phase".as_ref(),
            phase.as_ref(),
        ];
        let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // A clean refusal exits 1; an allocation failure would abort (signal).
        assert_eq!(out.status.code(), Some(1), "{phase}: {err}");
        assert!(err.contains("this machine has"), "{phase}: {err}");
        assert!(
            err.contains("layer `data`") || err.contains("layer `act`"),
            "{err}"
        );
        assert!(err.contains("1x1x200000x200000"), "{err}");
    }
}

//! The CPU kernels' instruction-set switch (`backend::set_isa`, `--isa`): every
//! level this machine supports computes the same values as a naive f64 loop
//! and, because no level contracts multiply-adds, the same bits as the others.

mod common;

use common::isa::each_isa;
use netrun::backend::cpu::{copy, rows};
use netrun::backend::{self, Isa, WinogradPolicy};
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, uniform_blob};
use std::process::Command;

#[test]
fn levels_parse_order_and_refuse_what_the_cpu_lacks() {
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()), Some(isa));
        assert_eq!(Isa::parse(&isa.name().to_uppercase()), Some(isa));
    }
    assert_eq!(Isa::parse("sse9"), None);
    assert!(Isa::Scalar < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
    let supported = Isa::supported();
    assert_eq!(supported[0], Isa::detected());
    if Isa::detected() < Isa::Avx512 {
        let e = backend::set_isa(Isa::Avx512).unwrap_err().to_string();
        assert!(e.contains("`avx512` is not available"), "{e}");
        assert!(e.contains(Isa::detected().name()), "{e}");
    }
}

#[test]
fn row_copies_zeros_and_norms_at_every_level() {
    let src: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin() - 0.2).collect();
    let mut norms: Vec<Vec<u32>> = Vec::new();
    each_isa(|isa| {
        // Every length up to four 16-lane steps and a masked tail.
        for n in 0..src.len() {
            let mut dst = vec![9.0f32; n + 3];
            copy::copy(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "{isa}: copy of {n}");
            assert!(dst[n..].iter().all(|&v| v == 9.0), "{isa}: copy past {n}");
            copy::zero(&mut dst[..n]);
            assert!(dst[..n].iter().all(|&v| v == 0.0), "{isa}: zero of {n}");
            assert!(dst[n..].iter().all(|&v| v == 9.0), "{isa}: zero past {n}");
        }
        let mut bits = Vec::new();
        for n in [1, 7, 8, 9, 67] {
            let mut row = src[..n].to_vec();
            let want: f64 = src[..n].iter().map(|&v| v as f64 * v as f64).sum::<f64>();
            let norm = rows::normalize_row(&mut row);
            assert!(
                (norm - want.sqrt()).abs() <= 1e-12 * want.sqrt(),
                "{isa}: norm {n}"
            );
            let unit: Vec<f64> = src[..n].iter().map(|&v| v as f64 / norm).collect();
            assert_close(&row, &unit, 1e-6, 1e-7, &format!("{isa}: row {n}"));
            bits.extend(row.iter().map(|v| v.to_bits()));
        }
        norms.push(bits);
    });
    assert!(norms.windows(2).all(|w| w[0] == w[1]), "levels differ");
}

#[test]
fn matrix_vector_rows_at_every_level() {
    // m = 1 against transposed weights takes the row-dot-product path (a
    // fully-connected layer at batch 1); 1000 columns leave a tail of 8.
    let (n, k) = (300, 1000);
    let a = uniform_blob(&[k], -1.0, 1.0, 3);
    let b = uniform_blob(&[n, k], -1.0, 1.0, 4);
    let want: Vec<f64> = (0..n)
        .map(|j| {
            let row = &b.data()[j * k..][..k];
            0.5 * row
                .iter()
                .zip(a.data())
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum::<f64>()
        })
        .collect();
    let mut outs: Vec<Vec<f32>> = Vec::new();
    each_isa(|isa| {
        let mut c = vec![0.0f32; n];
        backend::gemm(false, true, 1, n, k, 0.5, a.data(), b.data(), 0.0, &mut c);
        assert_close(&c, &want, 1e-5, 1e-5, &format!("{isa}: gemv"));
        outs.push(c);
    });
    assert!(outs.windows(2).all(|w| w[0] == w[1]), "levels differ");
}

/// A 3×3 and a 5×5 convolution forced onto Winograd, forward and backward: the
/// outputs and every gradient, bit for bit, at each level.
#[test]
fn winograd_convolutions_agree_bit_for_bit_across_levels() {
    let text = "force_backward: true\n\
        layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 2 dim: 20 dim: 9 dim: 11 } } }\n\
        layer { name: \"c3\" type: \"Convolution\" bottom: \"x\" top: \"a\" convolution_param { num_output: 18 kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.1 } bias_filler { type: \"constant\" value: 0.1 } } }\n\
        layer { name: \"c5\" type: \"Convolution\" bottom: \"a\" top: \"y\" convolution_param { num_output: 17 kernel_size: 5 pad: 2 weight_filler { type: \"gaussian\" std: 0.1 } } }\n";
    same_bits_at_every_level(
        WinogradPolicy::Always,
        text,
        &[2, 20, 9, 11],
        &[2, 17, 9, 11],
    );
}

/// Shifted-window convolutions (Winograd off): stride 1 with groups and
/// dilation, and stride 2 over the four phases, with output channel counts
/// that leave partial register tiles. Their fused forward kernel must give the
/// same bits at every level, as the other kernels do.
#[test]
fn shifted_window_convolutions_agree_bit_for_bit_across_levels() {
    let text = "force_backward: true\n\
        layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 2 dim: 16 dim: 13 dim: 11 } } }\n\
        layer { name: \"g\" type: \"Convolution\" bottom: \"x\" top: \"a\" convolution_param { num_output: 22 kernel_size: 3 pad: 2 dilation: 2 group: 2 weight_filler { type: \"gaussian\" std: 0.1 } bias_filler { type: \"constant\" value: 0.1 } } }\n\
        layer { name: \"s\" type: \"Convolution\" bottom: \"a\" top: \"y\" convolution_param { num_output: 13 kernel_size: 3 stride: 2 pad: 1 weight_filler { type: \"gaussian\" std: 0.1 } } }\n";
    same_bits_at_every_level(
        WinogradPolicy::Never,
        text,
        &[2, 16, 13, 11],
        &[2, 13, 7, 6],
    );
}

/// Runs `text` (input `x`, output `y`) forward and backward at each level,
/// under the Winograd policy `winograd` (set while the level lock is held, so
/// tests running beside it cannot change it), and asserts that the output, the input's gradient and every parameter gradient
/// are bit-identical across levels.
fn same_bits_at_every_level(
    winograd: WinogradPolicy,
    text: &str,
    x_shape: &[usize],
    y_shape: &[usize],
) {
    let x = uniform_blob(x_shape, -1.0, 1.0, 5);
    let dy = uniform_blob(y_shape, -1.0, 1.0, 6);
    let mut runs: Vec<Vec<Vec<u32>>> = Vec::new();
    each_isa(|_| {
        backend::set_winograd(winograd);
        let mut net = Net::new(common::build(text, Phase::Train).unwrap(), 7).unwrap();
        net.blob_mut("x")
            .unwrap()
            .data_mut()
            .copy_from_slice(x.data());
        net.forward().unwrap();
        net.blob_mut("y")
            .unwrap()
            .diff_mut()
            .copy_from_slice(dy.data());
        net.backward().unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut run = vec![
            bits(net.blob("y").unwrap().data()),
            bits(net.blob("x").unwrap().diff()),
        ];
        run.extend(net.params.iter().map(|p| bits(p.diff())));
        runs.push(run);
    });
    for (i, r) in runs.iter().enumerate().skip(1) {
        assert!(
            r == &runs[0],
            "level {} of {:?} differs",
            i,
            Isa::supported()
        );
    }
}

fn netrun(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn time_names_the_dispatch_and_isa_caps_it() {
    let dir = std::env::temp_dir().join(format!("netrun-isa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("conv.prototxt");
    std::fs::write(
        &file,
        "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 3 dim: 12 dim: 10 } } }\n\
         layer { name: \"c\" type: \"Convolution\" bottom: \"x\" top: \"y\" convolution_param { num_output: 4 kernel_size: 3 } }\n",
    )
    .unwrap();
    let net = file.to_str().unwrap();
    let base = ["time", net, "--iterations", "1"];
    let out = netrun(&[&base[..], &["--isa", "scalar"]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = format!("CPU kernels scalar (CPU has {})", Isa::detected());
    assert!(text.lines().next().unwrap().contains(&header), "{text}");
    let out = netrun(&base);
    let text = String::from_utf8_lossy(&out.stdout);
    let header = format!("CPU kernels {0} (CPU has {0})", Isa::detected());
    assert!(text.lines().next().unwrap().contains(&header), "{text}");
    let out = netrun(&[&base[..], &["--isa", "sse9"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected avx512, avx2 or scalar"), "{err}");
    if Isa::detected() < Isa::Avx512 {
        let out = netrun(&[&base[..], &["--isa", "avx512"]].concat());
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not available on this CPU"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Nets in the style of BVLC Caffe's examples, written here (nothing is fetched): the HDF5
//! classification example on files h5py wrote, an FCN-style net whose upsampled scores are
//! cropped back to the input, and a net using the other BVLC layers added with them (its
//! labels, zeros under `netrun time`, double as BatchReindex's order and Embed's indices). Each
//! passes `netrun check` and one `netrun time` iteration (forward and backward).

mod common;

use common::python::run_script;
use std::path::Path;
use std::process::Command;

fn netrun(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "netrun {args:?} failed:\n{stdout}\n{stderr}"
    );
    format!("{stdout}{stderr}")
}

fn check_and_time(net: &Path, extra: &[&str]) -> String {
    let net = net.to_str().unwrap();
    let mut args = vec!["check", net];
    args.extend_from_slice(extra);
    let checked = netrun(&args);
    let mut args = vec!["time", net, "--iterations", "1"];
    args.extend_from_slice(extra);
    checked + &netrun(&args)
}

#[test]
fn hdf5_classification_net_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    run_script("bvlc_files.py", &[Path::new("h5write"), dir.path()]);
    let net = dir.path().join("train_val.prototxt");
    std::fs::write(
        &net,
        "name: \"LogisticRegressionNet\"\n\
         layer { name: \"data\" type: \"HDF5Data\" top: \"data\" top: \"label\" include { phase: TRAIN }\n\
           hdf5_data_param { source: \"list.txt\" batch_size: 4 } }\n\
         layer { name: \"data\" type: \"HDF5Data\" top: \"data\" top: \"label\" include { phase: TEST }\n\
           hdf5_data_param { source: \"list.txt\" batch_size: 2 } }\n\
         layer { name: \"fc1\" type: \"InnerProduct\" bottom: \"data\" top: \"fc1\"\n\
           param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 1 decay_mult: 0 }\n\
           inner_product_param { num_output: 2 weight_filler { type: \"gaussian\" std: 0.01 } bias_filler { type: \"constant\" value: 0 } } }\n\
         layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"fc1\" bottom: \"label\" top: \"loss\" }\n\
         layer { name: \"accuracy\" type: \"Accuracy\" bottom: \"fc1\" bottom: \"label\" top: \"accuracy\" include { phase: TEST } }\n",
    )
    .unwrap();
    let out = check_and_time(&net, &[]);
    assert!(out.contains("fc1"), "{out}");
}

#[test]
fn fcn_style_net_with_crop_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("fcn.prototxt");
    std::fs::write(
        &net,
        "layer { name: \"data\" type: \"Input\" top: \"data\" top: \"label\"\n\
           input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } shape { dim: 1 dim: 1 dim: 32 dim: 32 } } }\n\
         layer { name: \"conv1\" type: \"Convolution\" bottom: \"data\" top: \"conv1\"\n\
           convolution_param { num_output: 8 kernel_size: 3 pad: 10 weight_filler { type: \"xavier\" } } }\n\
         layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"conv1\" }\n\
         layer { name: \"pool1\" type: \"Pooling\" bottom: \"conv1\" top: \"pool1\" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n\
         layer { name: \"score\" type: \"Convolution\" bottom: \"pool1\" top: \"score\" convolution_param { num_output: 3 kernel_size: 1 } }\n\
         layer { name: \"upscore\" type: \"Deconvolution\" bottom: \"score\" top: \"upscore\"\n\
           param { lr_mult: 0 } convolution_param { num_output: 3 bias_term: false kernel_size: 4 stride: 2 } }\n\
         layer { name: \"crop\" type: \"Crop\" bottom: \"upscore\" bottom: \"data\" top: \"cropped\" crop_param { axis: 2 offset: 10 } }\n\
         layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"cropped\" bottom: \"label\" top: \"loss\" loss_param { ignore_label: 255 normalize: false } }\n",
    )
    .unwrap();
    let out = check_and_time(&net, &[]);
    assert!(out.contains("1x3x32x32"), "{out}");
}

#[test]
fn net_of_the_other_added_layers_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("others.prototxt");
    std::fs::write(
        &net,
        "layer { name: \"data\" type: \"MemoryData\" top: \"data\" top: \"label\"\n\
           memory_data_param { batch_size: 2 channels: 3 height: 13 width: 11 } }\n\
         layer { name: \"mvn\" type: \"MVN\" bottom: \"data\" top: \"mvn\" }\n\
         layer { name: \"conv\" type: \"Convolution\" bottom: \"mvn\" top: \"conv\" convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: \"xavier\" } } }\n\
         layer { name: \"spp\" type: \"SPP\" bottom: \"conv\" top: \"spp\" spp_param { pyramid_height: 2 } }\n\
         layer { name: \"bias\" type: \"Parameter\" top: \"bias\" parameter_param { shape { dim: 2 dim: 20 } } }\n\
         layer { name: \"biased\" type: \"Eltwise\" bottom: \"spp\" bottom: \"bias\" top: \"biased\" }\n\
         layer { name: \"ip\" type: \"InnerProduct\" bottom: \"biased\" top: \"ip\" inner_product_param { num_output: 5 weight_filler { type: \"xavier\" } } }\n\
         layer { name: \"swap\" type: \"BatchReindex\" bottom: \"ip\" bottom: \"label\" top: \"ip_swapped\" }\n\
         layer { name: \"hinge\" type: \"HingeLoss\" bottom: \"ip_swapped\" bottom: \"label\" top: \"hinge\" }\n\
         layer { name: \"top2\" type: \"ArgMax\" bottom: \"ip\" top: \"top2\" argmax_param { top_k: 2 } }\n\
         layer { name: \"cols\" type: \"Im2col\" bottom: \"data\" top: \"cols\" convolution_param { kernel_size: 3 stride: 2 } }\n\
         layer { name: \"embed\" type: \"Embed\" bottom: \"label\" top: \"emb\" embed_param { num_output: 4 input_dim: 10 } }\n\
         layer { name: \"silence\" type: \"Silence\" bottom: \"cols\" bottom: \"emb\" bottom: \"top2\" }\n",
    )
    .unwrap();
    let out = check_and_time(&net, &[]);
    for layer in ["spp", "swap", "hinge", "embed"] {
        assert!(out.contains(layer), "{layer}: {out}");
    }
}

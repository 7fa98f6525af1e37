//! LSTM against PyTorch: `lstm_torch_reference.json` (beside this file, written by
//! `tests/python/lstm_reference.py` from torch.nn.LSTM in float64, its weights permuted
//! into Caffe's gate order i, f, o, g and its two biases added into one) holds the
//! inputs, the weights, the outputs h and the gradients of L = Σ R ⊙ h for two cases:
//! every stream starting at step 0, and stream 1 starting again at step 2 (`cont` = 0
//! there; torch ran that stream's two pieces separately from the zero state). netrun's
//! layer, given the same values and R as its top diff, must agree in forward and
//! backward to float32 accuracy. That pins the parts a self-made reference could get
//! wrong the same way as the layer: the packed gate order, the single bias, W_hc's
//! layout and what `cont` = 0 resets.

use netrun::blob::Blob;
use netrun::testing::{assert_close, backward, forward, layer, setup};
use serde_json::Value;

/// The numbers of `key` in one case.
fn numbers(case: &Value, key: &str) -> Vec<f64> {
    case[key]
        .as_array()
        .unwrap_or_else(|| panic!("reference case lacks `{key}`"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[test]
fn lstm_matches_torch_forward_and_backward_with_and_without_a_reset() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/layers_recurrent/lstm_torch_reference.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dim = |k: &str| doc["dims"][k].as_u64().unwrap() as usize;
    let (t, n, i, h) = (dim("T"), dim("N"), dim("I"), dim("H"));
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let what = case["name"].as_str().unwrap();
        let mut l = layer(&format!(
            "name: \"lstm\" type: \"LSTM\" bottom: \"x\" bottom: \"cont\" top: \"h\" \
             recurrent_param {{ num_output: {h} }}"
        ));
        let mut bottoms = vec![
            Blob::from_data(&[t, n, i], f32s(&numbers(case, "x"))),
            Blob::from_data(&[t, n], f32s(&numbers(case, "cont"))),
        ];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        // Caffe's blobs: W_xc (4H × I), b_c (4H), W_hc (4H × H).
        let shapes: Vec<&[usize]> = params.iter().map(|p| p.shape()).collect();
        assert_eq!(shapes, [&[4 * h, i][..], &[4 * h], &[4 * h, h]], "{what}");
        for (p, key) in params.iter_mut().zip(["W_xc", "b_c", "W_hc"]) {
            p.data_mut().copy_from_slice(&f32s(&numbers(case, key)));
        }
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        assert_close(
            tops[0].data(),
            &numbers(case, "h"),
            1e-5,
            1e-6,
            &format!("{what}: h"),
        );
        tops[0]
            .diff_mut()
            .copy_from_slice(&f32s(&numbers(case, "top_diff")));
        params.iter_mut().for_each(Blob::zero_diff);
        backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        );
        assert_close(
            bottoms[0].diff(),
            &numbers(case, "dx"),
            1e-4,
            1e-5,
            &format!("{what}: dx"),
        );
        for (p, key) in params.iter().zip(["dW_xc", "db_c", "dW_hc"]) {
            assert_close(
                p.diff(),
                &numbers(case, key),
                1e-4,
                1e-5,
                &format!("{what}: {key}"),
            );
        }
    }
}

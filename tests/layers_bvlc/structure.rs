//! Reduction and Tile against naive loops, and the gradient checker.

use super::layer_error;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

#[test]
fn reduction_matches_naive_sums_and_gradient() {
    let shape = [2, 3, 4];
    for (op, axis, coeff) in [
        ("SUM", 0, 1.0),
        ("ASUM", 1, 0.5),
        ("SUMSQ", -1, 2.0),
        ("MEAN", 2, -1.5),
        ("3", 1, 1.0),
    ] {
        let spec = format!(
            "name: \"r\" type: \"Reduction\" bottom: \"x\" top: \"y\" \
             reduction_param {{ operation: {op} axis: {axis} coeff: {coeff} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -2.0, 2.0, 21)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        let a = if axis < 0 { 3 + axis } else { axis } as usize;
        assert_eq!(tops[0].shape(), &shape[..a], "{spec}");
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let d: usize = shape[a..].iter().product();
        let want: Vec<f64> = bottoms[0]
            .data()
            .chunks(d)
            .map(|x| {
                let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                coeff
                    * match op {
                        "SUM" => x.iter().sum(),
                        "ASUM" => x.iter().map(|v| v.abs()).sum(),
                        "SUMSQ" | "3" => x.iter().map(|v| v * v).sum(),
                        _ => x.iter().sum::<f64>() / d as f64,
                    }
            })
            .collect();
        assert_close(tops[0].data(), &want, 1e-5, 1e-5, &spec);
        GradientChecker::default()
            .with_kink(0.0, 0.02)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
    let e = layer_error(
        "name: \"r\" type: \"Reduction\" bottom: \"x\" top: \"y\" reduction_param { operation: 0 }",
    );
    assert!(e.contains("operation 0 is not a ReductionOp"), "{e}");
    let e = layer_error(
        "name: \"r\" type: \"Reduction\" bottom: \"x\" top: \"y\" reduction_param { axis: 4 }",
    );
    assert!(
        e.contains("axis 4 is out of range for shape 2x3x4x5"),
        "{e}"
    );
}

#[test]
fn tile_repeats_along_the_axis_and_sums_gradients() {
    for (axis, tiles, shape) in [(1, 3, [2, 3, 2]), (0, 2, [2, 1, 3]), (-1, 4, [1, 2, 3])] {
        let spec = format!(
            "name: \"t\" type: \"Tile\" bottom: \"x\" top: \"y\" tile_param {{ axis: {axis} tiles: {tiles} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 1.0, 22)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        let a = if axis < 0 { 3 + axis } else { axis } as usize;
        let mut top_shape = shape.to_vec();
        top_shape[a] *= tiles;
        assert_eq!(tops[0].shape(), top_shape, "{spec}");
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        // y[i0, i1, i2] = x at the same index with axis a taken modulo shape[a].
        let mut want = Vec::new();
        for i0 in 0..top_shape[0] {
            for i1 in 0..top_shape[1] {
                for i2 in 0..top_shape[2] {
                    let mut i = [i0, i1, i2];
                    i[a] %= shape[a];
                    want.push(bottoms[0].data()[(i[0] * shape[1] + i[1]) * shape[2] + i[2]] as f64);
                }
            }
        }
        assert_close(tops[0].data(), &want, 0.0, 0.0, &spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
    let e = layer_error("name: \"t\" type: \"Tile\" bottom: \"x\" top: \"y\"");
    assert!(e.contains("needs `tile_param { tiles: ... }`"), "{e}");
    let e =
        layer_error("name: \"t\" type: \"Tile\" bottom: \"x\" top: \"y\" tile_param { tiles: 0 }");
    assert!(e.contains("tiles must be at least 1, got 0"), "{e}");
}

#[test]
fn unsupported_types_say_why_and_what_to_do() {
    let e = layer_error("name: \"p\" type: \"Python\" bottom: \"x\" top: \"y\"");
    assert!(e.contains("Python layers run user code"), "{e}");
    assert!(e.contains("Input layer"), "{e}");
    let e = layer_error("name: \"w\" type: \"WindowData\" top: \"d\"");
    assert!(e.contains("WindowData"), "{e}");
    assert!(e.contains("ImageData"), "{e}");
}

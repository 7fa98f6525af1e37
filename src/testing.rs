//! Test support shared by unit and integration tests: the numerical gradient
//! checker every layer test uses (after Caffe's `GradientChecker`).

use crate::blob::Blob;
use crate::layer_io::{LayerIo, Rng, RunCtx};
use crate::layers::{Layer, ParamStreams};
use crate::netdef::Phase;
use rand::{Rng as _, SeedableRng};

/// Compares a layer's backward with central differences of its forward.
///
/// The objective is a fixed random projection of all tops,
/// L = Σ_t Σ_i r_ti · top_ti with r ~ U(−1, 1), so one backward (top diffs =
/// r) gives the whole gradient. Each input element x is checked against
/// (L(x + h) − L(x − h)) / 2h, accumulated in f64; it passes when
/// |analytic − numeric| ≤ threshold · max(|analytic|, |numeric|, 1).
#[derive(Debug, Clone)]
pub struct GradientChecker {
    pub step: f64,
    pub threshold: f64,
    pub seed: u64,
    /// Inputs within `kink_range` of `kink` are skipped (non-differentiable points).
    pub kink: f32,
    pub kink_range: f32,
    pub phase: Phase,
}

impl Default for GradientChecker {
    fn default() -> Self {
        GradientChecker {
            step: 1e-2,
            threshold: 1e-2,
            seed: 1701,
            kink: 0.0,
            kink_range: -1.0,
            phase: Phase::Train,
        }
    }
}

/// Which blob an element belongs to, for messages.
#[derive(Debug, Clone, Copy)]
enum Target {
    Bottom(usize),
    Param(usize),
}

impl GradientChecker {
    pub fn new(step: f64, threshold: f64) -> GradientChecker {
        GradientChecker {
            step,
            threshold,
            ..GradientChecker::default()
        }
    }

    pub fn with_kink(mut self, kink: f32, range: f32) -> GradientChecker {
        self.kink = kink;
        self.kink_range = range;
        self
    }

    /// Checks bottoms `i` with `check_bottom[i]` and every learnable blob whose
    /// diff the layer declares a gradient. `tops` must be shaped (call reshape first).
    /// Returns how many elements were compared.
    pub fn check(
        &self,
        layer: &mut dyn Layer,
        bottoms: &mut [Blob],
        tops: &mut [Blob],
        params: &mut [Blob],
        check_bottom: &[bool],
    ) -> Result<usize, String> {
        let mut rng = Rng::seed_from_u64(self.seed);
        let weights: Vec<Vec<f32>> = tops
            .iter()
            .map(|t| (0..t.count()).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();

        // Analytic gradient. A forward that rewrites its parameters (row
        // normalisation) must be differentiated at the values it was given, so
        // they are restored before the numeric evaluations too.
        let original: Vec<Vec<f32>> = params.iter().map(|p| p.data().to_vec()).collect();
        self.forward(layer, bottoms, tops, params)?;
        for (t, w) in tops.iter_mut().zip(&weights) {
            t.diff_mut().copy_from_slice(w);
        }
        params.iter_mut().for_each(Blob::zero_diff);
        bottoms.iter_mut().for_each(Blob::zero_diff);
        {
            let mut io = io(bottoms, tops, params);
            let mut run_rng = Rng::seed_from_u64(self.seed ^ 0x5eed);
            layer.backward(
                &mut io,
                check_bottom,
                &mut RunCtx {
                    phase: self.phase,
                    rng: &mut run_rng,
                },
            )?;
        }
        let bottom_grads: Vec<Vec<f32>> = bottoms.iter().map(|b| b.diff().to_vec()).collect();
        let param_grads: Vec<Vec<f32>> = params.iter().map(|p| p.diff().to_vec()).collect();
        for (p, o) in params.iter_mut().zip(&original) {
            p.data_mut().copy_from_slice(o);
        }

        let mut targets: Vec<Target> = (0..bottoms.len())
            .filter(|&i| check_bottom.get(i) == Some(&true))
            .map(Target::Bottom)
            .collect();
        targets.extend(
            (0..params.len())
                .filter(|&i| layer.param_diff_is_gradient(i))
                .map(Target::Param),
        );
        let mut compared = 0;
        for target in targets {
            let n = match target {
                Target::Bottom(i) => bottoms[i].count(),
                Target::Param(i) => params[i].count(),
            };
            for k in 0..n {
                let x = match target {
                    Target::Bottom(i) => bottoms[i].data()[k],
                    Target::Param(i) => params[i].data()[k],
                };
                if self.kink_range > 0.0 && (x - self.kink).abs() < self.kink_range {
                    continue;
                }
                let mut objective_at = |v: f32| -> Result<f64, String> {
                    // Parameters may be rewritten by forward (row normalisation), so
                    // every evaluation starts from the original values.
                    let saved: Vec<Vec<f32>> = params.iter().map(|p| p.data().to_vec()).collect();
                    match target {
                        Target::Bottom(i) => bottoms[i].data_mut()[k] = v,
                        Target::Param(i) => params[i].data_mut()[k] = v,
                    }
                    self.forward(layer, bottoms, tops, params)?;
                    let l = objective(tops, &weights);
                    for (p, s) in params.iter_mut().zip(saved) {
                        p.data_mut().copy_from_slice(&s);
                    }
                    Ok(l)
                };
                let h = self.step;
                let plus = objective_at((x as f64 + h) as f32)?;
                let minus = objective_at((x as f64 - h) as f32)?;
                match target {
                    Target::Bottom(i) => bottoms[i].data_mut()[k] = x,
                    Target::Param(i) => params[i].data_mut()[k] = x,
                }
                let numeric = (plus - minus) / (2.0 * h);
                let analytic = match target {
                    Target::Bottom(i) => bottom_grads[i][k],
                    Target::Param(i) => param_grads[i][k],
                } as f64;
                let scale = analytic.abs().max(numeric.abs()).max(1.0);
                if (analytic - numeric).abs() > self.threshold * scale {
                    let what = match target {
                        Target::Bottom(i) => format!("bottom {i}"),
                        Target::Param(i) => format!("param blob {i}"),
                    };
                    return Err(format!(
                        "{} layer: gradient of {what} element {k} (x = {x}): analytic {analytic:.6e}, numeric {numeric:.6e}, tolerance {:.3e}",
                        layer.type_name(),
                        self.threshold * scale
                    ));
                }
                compared += 1;
            }
        }
        // Leave the layer's outputs as at the unperturbed point.
        self.forward(layer, bottoms, tops, params)?;
        Ok(compared)
    }

    fn forward(
        &self,
        layer: &mut dyn Layer,
        bottoms: &mut [Blob],
        tops: &mut [Blob],
        params: &mut [Blob],
    ) -> Result<(), String> {
        // The same random stream for every evaluation (dropout masks, mining).
        let mut rng = Rng::seed_from_u64(self.seed ^ 0x5eed);
        let mut io = io(bottoms, tops, params);
        layer.forward(
            &mut io,
            &mut RunCtx {
                phase: self.phase,
                rng: &mut rng,
            },
        )
    }
}

fn io<'a>(bottoms: &'a mut [Blob], tops: &'a mut [Blob], params: &'a mut [Blob]) -> LayerIo<'a> {
    LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    )
}

fn objective(tops: &[Blob], weights: &[Vec<f32>]) -> f64 {
    tops.iter()
        .zip(weights)
        .map(|(t, w)| {
            t.data()
                .iter()
                .zip(w)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
        })
        .sum()
}

/// Blobs filled with U(lo, hi) values from a seeded stream (test inputs).
pub fn uniform_blob(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Blob {
    let mut rng = Rng::seed_from_u64(seed);
    let n = crate::shape::count(shape);
    Blob::from_data(shape, (0..n).map(|_| rng.gen_range(lo..hi)).collect())
}

/// Builds one layer from the inside of a `layer { ... }` block.
pub fn layer(text: &str) -> Box<dyn Layer> {
    let net = crate::netdef::parse_net_str("test.net", &format!("layer {{ {text} }}"))
        .unwrap_or_else(|e| panic!("{e}"));
    crate::layers::build(&net.layers[0], &crate::layers::BuildContext::default())
        .unwrap_or_else(|d| panic!("{}", crate::Error::Config(d)))
}

/// Reshapes `layer` for `bottoms`, returning zeroed tops and params filled
/// by the layer's fillers from `seed`.
pub fn setup(layer: &mut dyn Layer, bottoms: &[Blob], seed: u64) -> (Vec<Blob>, Vec<Blob>) {
    let shapes: Vec<_> = bottoms.iter().map(|b| b.shape().to_vec()).collect();
    let tops = layer
        .reshape(&shapes)
        .unwrap_or_else(|e| panic!("reshape: {}", e.message));
    let mut params: Vec<Blob> = layer.param_shapes().iter().map(|s| Blob::new(s)).collect();
    layer.fill_params(
        &mut params,
        &ParamStreams {
            seed,
            layer: "checked",
        },
    );
    (tops.iter().map(|s| Blob::new(s)).collect(), params)
}

/// Runs forward once (TRAIN phase, fixed random stream).
pub fn forward(
    layer: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
) {
    forward_in(Phase::Train, layer, bottoms, tops, params)
}

/// Runs forward once in `phase` (fixed random stream).
pub fn forward_in(
    phase: Phase,
    layer: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
) {
    let mut rng = Rng::seed_from_u64(7);
    let mut io = io(bottoms, tops, params);
    layer
        .forward(
            &mut io,
            &mut RunCtx {
                phase,
                rng: &mut rng,
            },
        )
        .unwrap_or_else(|e| panic!("forward: {e}"));
}

/// Runs backward once (TRAIN phase) with the tops' diffs as they are: bottom
/// diffs are overwritten where `propagate_down`, param diffs accumulate.
pub fn backward(
    layer: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    propagate_down: &[bool],
) {
    let mut rng = Rng::seed_from_u64(7);
    let mut io = io(bottoms, tops, params);
    layer
        .backward(
            &mut io,
            propagate_down,
            &mut RunCtx {
                phase: Phase::Train,
                rng: &mut rng,
            },
        )
        .unwrap_or_else(|e| panic!("backward: {e}"));
}

/// Asserts two slices agree within `atol + rtol·|expected|` element-wise.
pub fn assert_close(actual: &[f32], expected: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a as f64 - e).abs() <= atol + rtol * e.abs(),
            "{what}[{i}]: got {a}, expected {e}"
        );
    }
}

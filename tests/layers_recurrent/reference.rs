//! Naive float64 loops of Caffe's recurrent formulas, written from the math (one
//! scalar at a time, no matrix helpers), for the forward checks.
// Index loops on purpose: the references spell out every subscript of the formulas.
#![allow(clippy::needless_range_loop)]

/// Sizes: T steps, N streams, I inputs, S static inputs (0: none), H hidden.
#[derive(Clone, Copy)]
pub struct Dims {
    pub t: usize,
    pub n: usize,
    pub i: usize,
    pub s: usize,
    pub h: usize,
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Row r of W·v (W rows × cols, row-major, f32) in float64.
fn dot(w: &[f32], r: usize, cols: usize, v: &[f64]) -> f64 {
    (0..cols).map(|q| w[r * cols + q] as f64 * v[q]).sum()
}

fn as64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The pre-activations of row r for stream n at step t:
/// W_x·x_t + b + W_s·x_s + W_h·(cont·h_prev).
#[allow(clippy::too_many_arguments)]
fn pre(
    d: Dims,
    rows_w_h: &[f32],
    p: &[Vec<f32>],
    x: &[f32],
    xs: Option<&[f32]>,
    t: usize,
    n: usize,
    r: usize,
    hc: &[f64],
) -> f64 {
    let xt = as64(&x[(t * d.n + n) * d.i..(t * d.n + n + 1) * d.i]);
    let mut a = p[1][r] as f64 + dot(&p[0], r, d.i, &xt);
    if let Some(xs) = xs {
        a += dot(&p[2], r, d.s, &as64(&xs[n * d.s..(n + 1) * d.s]));
    }
    a + dot(rows_w_h, r, d.h, hc)
}

/// LSTM (Caffe's gate order i, f, o, g; blobs W_xc, b_c, [W_xc_static], W_hc).
/// Returns h_1 … h_T (T·N·H), h_T and c_T.
pub fn lstm(
    d: Dims,
    p: &[Vec<f32>],
    x: &[f32],
    cont: &[f32],
    xs: Option<&[f32]>,
    h0: &[f64],
    c0: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let w_h = p.last().unwrap();
    let (mut h, mut c) = (h0.to_vec(), c0.to_vec());
    let mut out = vec![];
    for t in 0..d.t {
        let (mut hn, mut cn) = (vec![0.0; d.n * d.h], vec![0.0; d.n * d.h]);
        for n in 0..d.n {
            let k = cont[t * d.n + n] as f64;
            let hc: Vec<f64> = h[n * d.h..(n + 1) * d.h].iter().map(|v| k * v).collect();
            for j in 0..d.h {
                let gate = |g: usize| pre(d, w_h, p, x, xs, t, n, g * d.h + j, &hc);
                let (i, f, o, g) = (
                    sigmoid(gate(0)),
                    k * sigmoid(gate(1)),
                    sigmoid(gate(2)),
                    gate(3).tanh(),
                );
                cn[n * d.h + j] = f * c[n * d.h + j] + i * g;
                hn[n * d.h + j] = o * cn[n * d.h + j].tanh();
            }
        }
        out.extend(&hn);
        h = hn;
        c = cn;
    }
    (out, h, c)
}

/// RNN (blobs W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o). Returns o_1 … o_T and h_T.
pub fn rnn(
    d: Dims,
    p: &[Vec<f32>],
    x: &[f32],
    cont: &[f32],
    xs: Option<&[f32]>,
    h0: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let m = p.len();
    let (w_hh, w_ho, b_o) = (&p[m - 3], &p[m - 2], &p[m - 1]);
    let mut h = h0.to_vec();
    let mut out = vec![];
    for t in 0..d.t {
        let mut hn = vec![0.0; d.n * d.h];
        for n in 0..d.n {
            let k = cont[t * d.n + n] as f64;
            let hc: Vec<f64> = h[n * d.h..(n + 1) * d.h].iter().map(|v| k * v).collect();
            for j in 0..d.h {
                hn[n * d.h + j] = pre(d, w_hh, p, x, xs, t, n, j, &hc).tanh();
            }
        }
        for n in 0..d.n {
            for j in 0..d.h {
                let v = b_o[j] as f64 + dot(w_ho, j, d.h, &hn[n * d.h..(n + 1) * d.h]);
                out.push(v.tanh());
            }
        }
        h = hn;
    }
    (out, h)
}

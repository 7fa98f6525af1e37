// GlobalLSEMargin (legend in global_lse_margin.rs): cosines c (M × C), label y_i,
// s_i = s, or n_i with bottom 2 (`norms`, null without it). In double:
// global_lse_margin_rows, one thread per sample, classes in order:
//   a_i = max(−1, max_{j≠y} c_ij),  L_i = a_i + ln(Σ_{j≠y} e^(s_i·(c_ij − a_i)))/s_i,
//   δ_i = c_iy − L_i, with c_iy, L_i and a_i kept for the statistics top;
// the host runs the mean shift on δ for the margin m (TRAIN), then
// global_lse_margin_forward: out = s_i·(c − m·[j = y]) where m > 0, else s_i·c.
// Backward (m constant): dx = s_i·dy (global_lse_margin_backward); the scale's
// ds += Σ dy·out / s and with bottom 2 dn_i = Σ_j dy_ij·out_ij / n_i, both from
// row_dots(out, dy) (margin_inner_product.cu), then loss_sum (loss.cu) for ds or
// global_lse_margin_norm_grad for dn. A label outside [0, C) counts in `bad`.

extern "C" __global__ void global_lse_margin_rows(const float* x, const float* label,
                                                  const float* norms, double s, double* delta,
                                                  double* target, double* lse, double* amax,
                                                  long long c, long long rows, int* bad) {
    GRID_STRIDE(i, rows) {
        const float* row = x + i * c;
        long long y = class_label(label[i], c);
        if (y < 0) {
            atomicAdd(bad, 1);
            delta[i] = target[i] = lse[i] = amax[i] = 0.0;
            continue;
        }
        double si = norms ? (double)norms[i] : s, a = -1.0, sum = 0.0;
        for (long long j = 0; j < c; ++j)
            if (j != y) a = fmax(a, (double)row[j]);
        for (long long j = 0; j < c; ++j)
            if (j != y) sum += exp(si * ((double)row[j] - a));
        double l = a + log(sum) / si;
        delta[i] = (double)row[y] - l;
        target[i] = row[y];
        lse[i] = l;
        amax[i] = a;
    }
}

extern "C" __global__ void global_lse_margin_forward(const float* x, const float* label,
                                                     const float* norms, float* out, double s,
                                                     double m, long long c, long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c;
        double si = norms ? (double)norms[i] : s;
        double shift = class_label(label[i], c) == e % c && m > 0.0 ? m : 0.0;
        out[e] = (float)(si * ((double)x[e] - shift));
    }
}

extern "C" __global__ void global_lse_margin_backward(const float* dy, const float* norms,
                                                      float* dx, double s, long long c,
                                                      long long count) {
    GRID_STRIDE(e, count) {
        double si = norms ? (double)norms[e / c] : s;
        dx[e] = (float)(si * (double)dy[e]);
    }
}

// dn_i = dot_i / n_i, dot_i = Σ_j out_ij·dy_ij from row_dots.
extern "C" __global__ void global_lse_margin_norm_grad(const double* dots, const float* norms,
                                                       float* dn, long long rows) {
    GRID_STRIDE(i, rows) { dn[i] = (float)(dots[i] / (double)norms[i]); }
}

// GeneralTripletLoss (NormFace) on distances d (M × C), label y_i, margin a,
// weights pw / nw (legend and the fork's rules in general_triplet_loss.rs). One
// thread per sample, the row's classes in order, as the CPU path:
//   h_ij = nw·max(0, d_iy + a − d_ij) (double) for j ≠ y;
//   term_i = Σ_j |h_ij|, or with hardest_only the largest h_ij (class 0 the first
//   candidate, worth 0 when it is the target; ties keep the earlier class);
//   pos_i = d_iy, neg_i = Σ_{j≠y} d_ij (for the statistics top).
// loss_sum (loss.cu) adds term, pos and neg; the host divides by M (and M·(C−1)).
// A label outside [0, C) counts in `bad` and the row adds 0.
// Backward, scale = loss_weight/M, v_i = weight i (1 without bottom 2):
//   dd_ij = −nw where d_iy + a > d_ij in float (j ≠ y), or only at the kept class
//   with hardest_only; dd_iy = pw with add_center_loss or any such negative;
//   then each entry times v_i·scale (double, rounded once).

extern "C" __global__ void general_triplet_loss_forward(const float* d, const float* label,
                                                        double* term, double* pos, double* neg,
                                                        int* hardest, float margin, float nw,
                                                        int hardest_only, long long c,
                                                        long long rows, int* bad) {
    GRID_STRIDE(i, rows) {
        const float* row = d + i * c;
        long long y = class_label(label[i], c);
        term[i] = pos[i] = neg[i] = 0.0;
        hardest[i] = 0;
        if (y < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        double same = row[y], loss = 0.0, others = 0.0, best_h = 0.0;
        long long best = 0;
        for (long long j = 0; j < c; ++j) {
            double h = fmax(same + (double)margin - (double)row[j], 0.0) * (double)nw;
            if (j == 0) best_h = y == 0 ? 0.0 : h;
            if (j == y) continue;
            others += row[j];
            if (!hardest_only) loss += fabs(h);
            if (j > 0 && h > best_h) {
                best = j;
                best_h = h;
            }
        }
        if (hardest_only && best != y) loss = fabs(best_h);
        term[i] = loss;
        pos[i] = same;
        neg[i] = others;
        hardest[i] = (int)best;
    }
}

// `weights` is null without bottom 2. Labels were checked by the forward.
extern "C" __global__ void general_triplet_loss_backward(const float* d, const float* label,
                                                         const float* weights, const int* hardest,
                                                         float* dd, double scale, float margin,
                                                         float pw, float nw, int hardest_only,
                                                         int add_center_loss, long long c,
                                                         long long rows) {
    GRID_STRIDE(i, rows) {
        const float* row = d + i * c;
        float* g = dd + i * c;
        long long y = class_label(label[i], c);
        for (long long j = 0; j < c; ++j) g[j] = 0.0f;
        if (y < 0) continue;
        bool active = false;
        if (hardest_only) {
            g[hardest[i]] = -nw;
            active = true;
        } else {
            for (long long j = 0; j < c; ++j) {
                if (j != y && row[y] + margin > row[j]) {
                    g[j] = -nw;
                    active = true;
                }
            }
        }
        if (add_center_loss || active) g[y] = pw;
        double v = weights ? (double)weights[i] : 1.0;
        for (long long j = 0; j < c; ++j) g[j] = (float)((double)g[j] * v * scale);
    }
}

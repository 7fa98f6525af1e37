// GeneralContrastiveLoss (NormFace) on distances d (M × C), label y_i (legend and the
// fork's rules in general_contrastive_loss.rs). The host passes nm (negative_margin,
// plus μ with add_intra_mae) and keeps μ's update; `flags` packs the options:
#define GCL_POSITIVE_FIRST 1     // rows with d_iy > ub drop their negatives
#define GCL_MAX_POSITIVE_ONLY 2  // only the smallest e_iy is kept (across samples)
#define GCL_MAX_NEGATIVE_ONLY 4  // each row keeps its largest e_ij
#define GCL_EXP_NEGATIVE 8       // negative terms nw·e^(−d) instead of nw·(nm − d)
//
// Forward, three launches:
//   general_contrastive_loss_forward, one thread per sample, the row's classes in order
//   as the CPU path (double):
//     t_i = min(T, max(0, d_iy − pm)), pos_e_i = pw·t_i (signed, for the selection);
//     e_ij = nw·(nm − d_ij) (nw·e^(−d_ij)) where d_ij < nm, j ≠ y, else 0;
//     kept_negative_i = argmax over the row of e_ij, starting at class 0 whose value is
//     e_iy when it is the target (the fork's rule), later classes only when larger;
//     term_i = Σ_{j≠y} |e_ij| over the entries kept (positive_first, max_negative_only);
//     hinge_i = t_i, neg_i = Σ_{j≠y, d_ij<nm} (nm − d_ij) (the statistics top).
//   general_contrastive_loss_keep_positive, one block: kept = the first i of smallest
//     pos_e_i (the fork's sequential rule, one thread: M is a batch), then
//     term_i += |pos_e_i| where the positive is kept.
//   loss_sum (loss.cu) adds term, hinge and neg; the host divides by M (M·(C − 1)).
// A label outside [0, C) counts in `bad` and the row adds 0.
//
// Backward, two launches (g = loss weight, v_i = weight i, 1 without bottom 2):
//   general_contrastive_loss_negatives: per sample, w_i = Σ_j of the kept negative
//     gradients' magnitudes (nw or nw·e^(−d_ij)) and v_i (double); the host sums both
//     with loss_sum, S = |Σ w|/(r·M), divisor = S when normalize_negative is set and
//     S > pw (else 1), mean = Σ v/M.
//   general_contrastive_loss_backward, per entry:
//     positive_first rows with d_iy > ub: pw at the target, 0 elsewhere;
//     dd_iy = pw where pm < d_iy < T (float compares) and the positive is kept;
//     dd_ij = −w_ij / divisor where d_ij < nm and the entry is kept;
//   then times v_i/mean (with weights), times g, divided by M (double, rounded once).

// e_ij's weight for a negative entry: nw or nw·e^(−d) (0 when d ≥ nm).
__device__ inline double gcl_negative(double v, double nm, float nw, int flags) {
    if (v >= nm) return 0.0;
    return (double)nw * ((flags & GCL_EXP_NEGATIVE) ? exp(-v) : nm - v);
}

// The magnitude of a negative entry's gradient: nw or nw·e^(−d) (0 when d ≥ nm).
__device__ inline double gcl_negative_grad(double v, double nm, float nw, int flags) {
    if (v >= nm) return 0.0;
    return (flags & GCL_EXP_NEGATIVE) ? (double)nw * exp(-v) : (double)nw;
}

// Whether row (d_iy) drops its negatives under positive_first (float compare, as the CPU).
__device__ inline bool gcl_positive_first(float d_y, float ub, int flags) {
    return (flags & GCL_POSITIVE_FIRST) && d_y > ub;
}

extern "C" __global__ void general_contrastive_loss_forward(
    const float* d, const float* label, double* term, double* pos_e, double* hinge, double* neg,
    int* kept_negative, double nm, float pm, float pw, float nw, float thresh, float ub,
    int flags, long long c, long long rows, int* bad) {
    GRID_STRIDE(i, rows) {
        const float* row = d + i * c;
        long long y = class_label(label[i], c);
        term[i] = pos_e[i] = hinge[i] = neg[i] = 0.0;
        kept_negative[i] = 0;
        if (y < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        double t = fmin(fmax((double)row[y] - (double)pm, 0.0), (double)thresh);
        double e_y = t * (double)pw, others = 0.0, best_e = 0.0;
        long long best = 0;
        for (long long j = 0; j < c; ++j) {
            double v = row[j];
            double e = j == y ? e_y : gcl_negative(v, nm, nw, flags);
            if (j != y && v < nm) others += nm - v;
            if (j == 0) {
                best_e = e;
            } else if (j != y && v < nm && e > best_e) {
                best = j;
                best_e = e;
            }
        }
        double loss = 0.0;
        if (!gcl_positive_first(row[y], ub, flags)) {
            for (long long j = 0; j < c; ++j) {
                if (j == y || ((flags & GCL_MAX_NEGATIVE_ONLY) && j != best)) continue;
                loss += fabs(gcl_negative(row[j], nm, nw, flags));
            }
        }
        term[i] = loss;
        pos_e[i] = e_y;
        hinge[i] = t;
        neg[i] = others;
        kept_negative[i] = (int)best;
    }
}

// Launch: one block (any blockDim). kept[0] is written by thread 0 before the barrier;
// global writes are visible to the whole block after __syncthreads.
extern "C" __global__ void general_contrastive_loss_keep_positive(const double* pos_e,
                                                                  double* term, int* kept,
                                                                  int flags, long long rows) {
    if (threadIdx.x == 0) {
        long long k = 0;
        for (long long i = 1; i < rows; ++i)
            if (pos_e[i] < pos_e[k]) k = i;
        kept[0] = (int)k;
    }
    __syncthreads();
    long long k = kept[0];
    for (long long i = threadIdx.x; i < rows; i += blockDim.x)
        if (!(flags & GCL_MAX_POSITIVE_ONLY) || i == k) term[i] += fabs(pos_e[i]);
}

// `weights` is null without bottom 2. Labels were checked by the forward.
extern "C" __global__ void general_contrastive_loss_negatives(
    const float* d, const float* label, const float* weights, const int* kept_negative,
    double* neg_w, double* v, double nm, float nw, float ub, int flags, long long c,
    long long rows) {
    GRID_STRIDE(i, rows) {
        const float* row = d + i * c;
        long long y = class_label(label[i], c);
        double s = 0.0;
        if (y >= 0 && !gcl_positive_first(row[y], ub, flags)) {
            for (long long j = 0; j < c; ++j) {
                if (j == y || ((flags & GCL_MAX_NEGATIVE_ONLY) && j != kept_negative[i])) continue;
                s += gcl_negative_grad(row[j], nm, nw, flags);
            }
        }
        neg_w[i] = s;
        v[i] = weights ? (double)weights[i] : 1.0;
    }
}

// `kept` is the sample keeping its positive (keep_positive's output).
extern "C" __global__ void general_contrastive_loss_backward(
    const float* d, const float* label, const float* weights, const int* kept_negative,
    const int* kept, float* dd, double g, double m, double weight_mean, double divisor,
    double nm, float pm, float pw, float nw, float thresh, float ub, int flags, long long c,
    long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c, j = e % c;
        const float* row = d + i * c;
        long long y = class_label(label[i], c);
        double grad = 0.0;
        if (y < 0) {
            dd[e] = 0.0f;
            continue;
        }
        if (gcl_positive_first(row[y], ub, flags)) {
            if (j == y) grad = pw;
        } else if (j == y) {
            bool keep = !(flags & GCL_MAX_POSITIVE_ONLY) || i == kept[0];
            if (row[y] > pm && row[y] < thresh && keep) grad = pw;
        } else if (!(flags & GCL_MAX_NEGATIVE_ONLY) || j == kept_negative[i]) {
            grad = -gcl_negative_grad(row[j], nm, nw, flags) / divisor;
        }
        if (weights) grad *= (double)weights[i] / weight_mean;
        dd[e] = (float)(grad * g / m);
    }
}

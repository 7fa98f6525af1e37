// ContrastiveLoss (legend in contrastive_loss.rs): pairs a_n, b_n of C values,
// similar when (int) s_n ≠ 0, d_n² = ‖a_n − b_n‖² in double.
// Forward, one block per pair: diff = a − b, d_n², and the pair's term
//   s_n·d² + (1 − s_n)·max(margin − d, 0)²   (legacy: max(margin − d², 0)),
// then loss_sum (loss.cu) and the host divides by 2N. A non-finite s_n counts
// in `bad` (the host reports it).
// Backward, per element, with α = ±loss_weight/N (bottom 0 / 1):
//   similar: α·diff;  dissimilar: −α·(margin − d)/(d + 1e-4)·diff when
//   margin − d > 0 (legacy: −α·diff when margin − d² > 0), else 0.

// Launch: grid = pairs, blockDim a power of two, blockDim doubles of shared memory.
extern "C" __global__ void contrastive_loss_forward(const float* a, const float* b,
                                                    const float* sim, float* diff,
                                                    double* dist_sq, double* term, double margin,
                                                    int legacy, long long c, int* bad) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * c;
    double acc = 0.0;
    for (long long e = threadIdx.x; e < c; e += blockDim.x) {
        float d = a[base + e] - b[base + e];
        diff[base + e] = d;
        acc += (double)d * (double)d;
    }
    double d2 = block_sum(acc, scratch);
    if (threadIdx.x != 0) return;
    float s = sim[blockIdx.x];
    if (!isfinite(s)) atomicAdd(bad, 1);
    dist_sq[blockIdx.x] = d2;
    if (truncf(s) != 0.0f)
        term[blockIdx.x] = d2;
    else if (legacy)
        term[blockIdx.x] = fmax(margin - d2, 0.0);
    else {
        double h = fmax(margin - sqrt(d2), 0.0);
        term[blockIdx.x] = h * h;
    }
}

extern "C" __global__ void contrastive_loss_backward(const float* diff, const float* sim,
                                                     const double* dist_sq, float* dx,
                                                     double alpha, double margin, int legacy,
                                                     long long c, long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c;
        double d2 = dist_sq[i], beta;
        if (truncf(sim[i]) != 0.0f) {
            beta = alpha;
        } else if (legacy) {
            beta = margin - d2 > 0.0 ? -alpha : 0.0;
        } else {
            double d = sqrt(d2);
            beta = margin - d > 0.0 ? -alpha * (margin - d) / (d + 1e-4) : 0.0;
        }
        dx[e] = (float)(beta * (double)diff[e]);
    }
}

// InnerDistance (NormFace): distances from x_i (M × K) to the rows w_j of W
// (N × K; normalised in place first with `normalize`, by inner_product.cu).
// L2 (squared): d_ij = ‖x_i‖² + ‖w_j‖² − 2·x_i·w_j, the −2·X·Wᵀ a cuBLAS GEMM
//   and the norms row_dots (margin_inner_product.cu) in double; then
//   inner_distance_l2_finish: d = max(d + ‖x_i‖² + ‖w_j‖², 0).
// L1: d_ij = Σ_k |x_ik − w_jk| in float, k in order (inner_distance_l1_forward).
// Backward, G = top diff; with `update_center_only` only each sample's own row
// of W gets a gradient (G masked to column y_i: inner_distance_mask):
//   L2: dx_i = 2·(Σ_j g_ij)·x_i − 2·(G·W)_i,  dw_j += 2·(Σ_i g'_ij)·w_j − 2·(G'ᵀX)_j
//       (the products cuBLAS; the sums inner_distance_row_sums / _column_sums,
//       added by margin_add_on_x);
//   L1: dx_it = Σ_j sign(x_it − w_jt)·g_ij,  dw_jt −= Σ_i sign(x_it − w_jt)·g'_ij,
//       in float and in order (one thread per element, no atomics).

extern "C" __global__ void inner_distance_l2_finish(float* d, const double* x_sq,
                                                    const double* w_sq, long long n,
                                                    long long count) {
    GRID_STRIDE(e, count) { d[e] = (float)fmax((double)d[e] + x_sq[e / n] + w_sq[e % n], 0.0); }
}

extern "C" __global__ void inner_distance_l1_forward(const float* x, const float* w, float* d,
                                                     long long k, long long n, long long count) {
    GRID_STRIDE(e, count) {
        const float *xi = x + (e / n) * k, *wj = w + (e % n) * k;
        float acc = 0.0f;
        for (long long t = 0; t < k; ++t) acc += fabsf(xi[t] - wj[t]);
        d[e] = acc;
    }
}

// g' = g in column y_i of row i, 0 elsewhere; a label outside [0, N) counts in
// `bad` (the host reports it) and its row is all 0.
extern "C" __global__ void inner_distance_mask(const float* g, const float* label, float* gm,
                                               long long n, long long count, int* bad) {
    GRID_STRIDE(e, count) {
        long long y = class_label(label[e / n], n);
        if (y < 0 && e % n == 0) atomicAdd(bad, 1);
        gm[e] = y == e % n ? g[e] : 0.0f;
    }
}

// out_i = scale·Σ_j a_ij over a row of n, in double (one block per row, blockDim
// doubles of shared memory).
extern "C" __global__ void inner_distance_row_sums(const float* a, double* out, double scale,
                                                   long long n) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) acc += (double)a[blockIdx.x * n + j];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = scale * acc;
}

// out_j = scale·Σ_i a_ij in double, rows in order (one thread per column).
extern "C" __global__ void inner_distance_column_sums(const float* a, double* out, double scale,
                                                      long long rows, long long n) {
    GRID_STRIDE(j, n) {
        double acc = 0.0;
        for (long long i = 0; i < rows; ++i) acc += (double)a[i * n + j];
        out[j] = scale * acc;
    }
}

__device__ inline float sgnf(float v) { return (float)((v > 0.0f) - (v < 0.0f)); }

// One thread per element (i, t) of X.
extern "C" __global__ void inner_distance_l1_backward_data(const float* x, const float* w,
                                                           const float* g, float* dx,
                                                           long long k, long long n,
                                                           long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / k, t = e % k;
        float acc = 0.0f;
        for (long long j = 0; j < n; ++j) acc += sgnf(x[e] - w[j * k + t]) * g[i * n + j];
        dx[e] = acc;
    }
}

// One thread per element (j, t) of W; gm is G masked (or G itself).
extern "C" __global__ void inner_distance_l1_backward_weights(const float* x, const float* w,
                                                              const float* gm, float* dw,
                                                              long long k, long long n,
                                                              long long rows) {
    GRID_STRIDE(e, n * k) {
        long long j = e / k, t = e % k;
        float acc = dw[e];
        for (long long i = 0; i < rows; ++i) acc -= sgnf(x[i * k + t] - w[e]) * gm[i * n + j];
        dw[e] = acc;
    }
}

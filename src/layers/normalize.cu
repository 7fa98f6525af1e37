// Normalize (and NormL2, which is Normalize L2 with eps = 1e-7): each sample
// x_n (K values) is scaled to unit norm, one block per sample.
//   L2: s_n = √(Σ_k x_nk² + eps);   L1: s_n = Σ_k |x_nk| + eps;   y_n = x_n / s_n.
// Backward (g = top-0 diff, h = norm-top diff with bp_norm, u = y (L2) or
// sign(y) (L1), D = s_n, or 1 with fix_gradient):
//   dx_n = (g_n − u·(y_n·g_n)) / D + h_n·u.
// Sums in double and y rounded once from x/s, as the CPU path does.
// Launch: grid = samples, blockDim a power of two ≤ 1024, blockDim doubles of
// shared memory. Both kernels may run in place (y = x, d = the diff in and out):
// a thread reads each element it writes, after the block's sum.

extern "C" __global__ void normalize_forward(const float* x, float* y, double* norms,
                                             float* norm_top, int l1, double eps, long long k) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * k;
    double acc = 0.0;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) {
        double v = x[base + e];
        acc += l1 ? fabs(v) : v * v;
    }
    double s = block_sum(acc, scratch) + eps;
    if (!l1) s = sqrt(s);
    if (threadIdx.x == 0) {
        norms[blockIdx.x] = s;
        if (norm_top) norm_top[blockIdx.x] = (float)s;
    }
    for (long long e = threadIdx.x; e < k; e += blockDim.x) y[base + e] = (float)((double)x[base + e] / s);
}

// `norm_diff` is null unless bp_norm with two tops.
extern "C" __global__ void normalize_backward(const float* y, float* d, const double* norms,
                                              const float* norm_diff, int l1, int fix,
                                              long long k) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * k;
    double dot = block_dot(d + base, y + base, k, scratch);
    double div = fix ? 1.0 : norms[blockIdx.x];
    double h = norm_diff ? (double)norm_diff[blockIdx.x] : 0.0;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) {
        float v = y[base + e];
        double u = l1 ? sgn(v) : (double)v;
        d[base + e] = (float)(((double)d[base + e] - u * dot) / div + h * u);
    }
}

// CombinedMarginInnerProduct: s·(cos(m1·θ + m2) − m3) at the target, s·cos θ
// elsewhere (legend in the .rs file). The products are cuBLAS GEMMs:
// cos = X̂·Ŵᵀ, dŴ = DCᵀ·X̂, dX̂ = DC·Ŵ; the kernels here do the rest.
// Forward: combined_margin_unit_rows for X and W (x̂ = x/max(‖x‖, 1e-12), norms
// kept), the GEMM, combined_margin_scale (clamp c to [−1, 1], f = s·c), then
// combined_margin_target_forward per sample:
//   c = clamp(x_i·w_y / (‖x_i‖·‖w_y‖), −1, 1) in double from the raw rows,
//   θ = arccos c, φ = m1·θ + m2, k = ⌊φ/π⌋, ψ = (−1)^k·cos φ − 2k,
//   f_iy = s·(ψ − m3);  slope ψ'(c) = (−1)^k·m1·sin(m1·t + m2)/sin t with
//   t = θ clamped to [1e-6, π − 1e-6] (k taken at t).
// Backward: combined_margin_dc (dc = s·g, times ψ'(c) at the target), then
// along_x = row_dots(dc, cos) and along_w = combined_margin_column_dots(dc, cos),
// and project_rows (margin_inner_product.cu) through both normalisations:
//   dW_j += (dŵ_j − along_w_j·ŵ_j)/‖w_j‖,  dx_i = (dx̂_i − along_x_i·x̂_i)/‖x_i‖.

// Launch: grid = rows, blockDim a power of two, blockDim doubles of shared memory.
extern "C" __global__ void combined_margin_unit_rows(const float* a, float* unit, double* norms,
                                                     long long k) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * k;
    double norm = fmax(sqrt(block_dot(a + base, a + base, k, scratch)), 1e-12);
    if (threadIdx.x == 0) norms[blockIdx.x] = norm;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) unit[base + e] = (float)((double)a[base + e] / norm);
}

// A NaN cosine stays NaN (as f32::clamp keeps it).
extern "C" __global__ void combined_margin_scale(float* cos, float* f, float s, long long count) {
    GRID_STRIDE(e, count) {
        float c = cos[e];
        c = c < -1.0f ? -1.0f : (c > 1.0f ? 1.0f : c);
        cos[e] = c;
        f[e] = s * c;
    }
}

// (−1)^k·cos φ − 2k for k = ⌊φ/π⌋, and (−1)^k.
__device__ inline double extended_cos(double phi, double* sign) {
    const double pi = 3.141592653589793;
    double k = floor(phi / pi);
    *sign = fmod(k, 2.0) == 0.0 ? 1.0 : -1.0;
    return *sign * cos(phi) - 2.0 * k;
}

// Launch: grid = samples, blockDim a power of two, blockDim doubles of shared
// memory. A label outside [0, n) counts in `bad` and the sample is skipped.
extern "C" __global__ void combined_margin_target_forward(
    const float* x, const float* w, const float* label, const double* x_norm,
    const double* w_norm, float* cos_out, float* f, double* slope, float s, double m1, double m2,
    double m3, long long k, long long n, int* bad) {
    extern __shared__ double scratch[];
    const double pi = 3.141592653589793;
    const long long i = blockIdx.x, y = class_label(label[i], n);
    if (y < 0) {
        if (threadIdx.x == 0) atomicAdd(bad, 1);
        return;
    }
    double xw = block_dot(x + i * k, w + y * k, k, scratch);
    if (threadIdx.x != 0) return;
    double c = fmin(fmax(xw / (x_norm[i] * w_norm[y]), -1.0), 1.0);
    double theta = acos(c), sign;
    double value = extended_cos(m1 * theta + m2, &sign);
    double t = fmin(fmax(theta, 1e-6), pi - 1e-6);
    extended_cos(m1 * t + m2, &sign);
    cos_out[i * n + y] = (float)c;
    slope[i] = sign * m1 * sin(m1 * t + m2) / sin(t);
    f[i * n + y] = (float)((double)s * (value - m3));
}

// dc_e = s·g_e, and at the target (column y_i of row i) dc = dc·ψ'(c_iy).
extern "C" __global__ void combined_margin_dc(const float* g, const float* label,
                                              const double* slope, float* dc, float s, long long n,
                                              long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / n;
        float d = s * g[e];
        if (class_label(label[i], n) == e % n) d = (float)((double)d * slope[i]);
        dc[e] = d;
    }
}

// out_j = Σ_i a_ij·b_ij over the rows of two rows × n matrices, in double and in
// row order (one thread per column).
extern "C" __global__ void combined_margin_column_dots(const float* a, const float* b,
                                                       double* out, long long rows, long long n) {
    GRID_STRIDE(j, n) {
        double acc = 0.0;
        for (long long i = 0; i < rows; ++i) acc += (double)a[i * n + j] * (double)b[i * n + j];
        out[j] = acc;
    }
}

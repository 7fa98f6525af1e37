// MarginInnerProduct (A-Softmax): the margin part; the products f = X·Ŵᵀ,
// dX = G'·Ŵ and dW = GᵀX (or G'ᵀX) are cuBLAS GEMMs, and the rows of W are
// normalised by inner_product_normalize_rows (inner_product.cu). Legend as in
// mod.rs: x_i (K values), unit rows ŵ_j, y = label i, m = 1..4, λ annealed.
// Forward, target logit only (m > 1; m = 1 leaves f as the GEMM gave it):
//   r = ‖x_i‖, c = x_i·ŵ_y / r (double),  f_iy = (λ·x_i·ŵ_y + r·ψ(c)) / (1 + λ)
//   ψ from sign flags, no arccos (s0 = sgn c):
//   m=2: ψ = 2·s0·c² − 1;  m=3: ψ = s1·(4c³ − 3c) + s2, s1 = sgn(|c| − ½),
//   s2 = s0·(1 + s1) − 2;  m=4: ψ = s3·(8c⁴ − 8c² + 1) + s4, s3 = s0·sgn(2c² − 1),
//   s4 = 2·s0 + s3 − 3;  slope ψ'(c) = 4·s0·c, s1·(12c² − 3), s3·(32c³ − 16c).
// Backward, per sample, with a = ψ'(c), b = (ψ(c) − c·a)/r, normalised to unit
// length (a, b)/√(a² + b²) unless `exact` (sphereface's coded gradient):
//   g'_iy = g_iy·(λ + a)/(1 + λ)  (in gm, a copy of G),  on_x_i = g_iy·b/(1 + λ),
//   then dx_i = (G'·Ŵ)_i + on_x_i·x_i (margin_add_on_x).
// `exact`: dW through the normalisation, dw_j += (dŵ_j − (ŵ_j·dŵ_j)·ŵ_j)/‖w_j‖
// with dŵ = G'ᵀX: row_dots for ŵ_j·dŵ_j, then project_rows. CombinedMargin-
// InnerProduct uses row_dots and project_rows too, and LargeMarginInnerProduct
// (L-Softmax, the same ψ on rows that are not normalised) the kernels below.

struct Psi {
    double value, slope;
};

__device__ inline Psi psi(int m, double c) {
    double s0 = sgn(c), c2 = c * c, c3 = c2 * c;
    if (m == 1) return Psi{c, 1.0};
    if (m == 2) return Psi{2.0 * s0 * c2 - 1.0, 4.0 * s0 * c};
    if (m == 3) {
        double s1 = sgn(fabs(c) - 0.5), s2 = s0 * (1.0 + s1) - 2.0;
        return Psi{s1 * (4.0 * c3 - 3.0 * c) + s2, s1 * (12.0 * c2 - 3.0)};
    }
    double s3 = s0 * sgn(2.0 * c2 - 1.0), s4 = 2.0 * s0 + s3 - 3.0;
    return Psi{s3 * (8.0 * c2 * c2 - 8.0 * c2 + 1.0) + s4, s3 * (32.0 * c3 - 16.0 * c)};
}

// Launch: grid = samples, blockDim a power of two, blockDim doubles of shared
// memory. A label outside [0, n) counts in `bad` (the host reports it) and the
// sample is left alone. `large` (L-Softmax, rows not normalised): with
// ρ = ‖w_y‖, c = x_i·w_y/(r·ρ) and f_iy = (λ·x_i·w_y + r·ρ·ψ(c))/(1 + λ); for
// A-Softmax ρ is 1, which leaves its formula unchanged to the bit.
extern "C" __global__ void margin_target_forward(const float* x, const float* w, const float* label,
                                                 float* f, double lambda, int m, int large,
                                                 long long k, long long n, int* bad) {
    extern __shared__ double scratch[];
    const long long i = blockIdx.x, y = class_label(label[i], n);
    if (y < 0) {
        if (threadIdx.x == 0) atomicAdd(bad, 1);
        return;
    }
    const float *xi = x + i * k, *wy = w + y * k;
    double r = sqrt(block_dot(xi, xi, k, scratch));
    double rho = large ? sqrt(block_dot(wy, wy, k, scratch)) : 1.0;
    double xw = block_dot(xi, wy, k, scratch);
    double c = xw / (r * rho);
    if (threadIdx.x == 0) f[i * n + y] = (float)((lambda * xw + r * rho * psi(m, c).value) / (1.0 + lambda));
}

// Same launch as the forward; labels were checked there.
extern "C" __global__ void margin_target_backward(const float* x, const float* w,
                                                  const float* label, const float* g, float* gm,
                                                  double* on_x, double lambda, int m, int exact,
                                                  long long k, long long n) {
    extern __shared__ double scratch[];
    const long long i = blockIdx.x, y = class_label(label[i], n);
    if (y < 0) return;
    const float* xi = x + i * k;
    double r = sqrt(block_dot(xi, xi, k, scratch));
    double c = block_dot(xi, w + y * k, k, scratch) / r;
    if (threadIdx.x != 0) return;
    Psi p = psi(m, c);
    double a = p.slope, b = (p.value - c * p.slope) / r;
    if (!exact) {
        double len = hypot(a, b);
        a /= len;
        b /= len;
    }
    double gy = g[i * n + y];
    gm[i * n + y] = (float)(gy * (lambda + a) / (1.0 + lambda));
    on_x[i] = gy * b / (1.0 + lambda);
}

// LargeMarginInnerProduct's true gradient (legend in largemargin_inner_product.rs):
// with a = ψ'(c), b = ψ(c) − c·a, g = g_iy/(1 + λ):
//   g'_iy = g·(λ + a) (in gm, a copy of G),  on_x_i = g·ρ·b/r,  on_w_i = g·r·b/ρ;
// then dx = G'·W + on_x·x, dW = G'ᵀ·X + on_w_j·w_j with on_w_j the sum of
// on_w_i over the samples of class j (large_margin_class_sums; both adds by
// margin_add_on_x). Same launch as margin_target_forward; labels checked there.
extern "C" __global__ void large_margin_target_backward(const float* x, const float* w,
                                                        const float* label, const float* g,
                                                        float* gm, double* on_x, double* on_w,
                                                        double lambda, int m, long long k,
                                                        long long n) {
    extern __shared__ double scratch[];
    const long long i = blockIdx.x, y = class_label(label[i], n);
    if (y < 0) return;
    const float *xi = x + i * k, *wy = w + y * k;
    double r = sqrt(block_dot(xi, xi, k, scratch));
    double rho = sqrt(block_dot(wy, wy, k, scratch));
    double c = block_dot(xi, wy, k, scratch) / (r * rho);
    if (threadIdx.x != 0) return;
    Psi p = psi(m, c);
    double a = p.slope, b = p.value - c * p.slope;
    double gy = (double)g[i * n + y] / (1.0 + lambda);
    gm[i * n + y] = (float)(gy * (lambda + a));
    on_x[i] = gy * rho * b / r;
    on_w[i] = gy * r * b / rho;
}

// out_j = Σ_{i: y_i = j} v_i in sample order, one thread per class j.
extern "C" __global__ void large_margin_class_sums(const float* label, const double* v,
                                                   double* out, long long n, long long rows) {
    GRID_STRIDE(j, n) {
        double acc = 0.0;
        for (long long i = 0; i < rows; ++i)
            if (class_label(label[i], n) == j) acc += v[i];
        out[j] = acc;
    }
}

// dx_e += on_x_i·x_e for every element e of sample i = e / k.
extern "C" __global__ void margin_add_on_x(const float* x, const double* on_x, float* dx,
                                           long long k, long long count) {
    GRID_STRIDE(e, count) { dx[e] = (float)((double)dx[e] + on_x[e / k] * (double)x[e]); }
}

// out_r = Σ_e a_re·b_re in double, one block per row r of length k (blockDim
// doubles of shared memory).
extern "C" __global__ void row_dots(const float* a, const float* b, double* out, long long k) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * k;
    double s = block_dot(a + base, b + base, k, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// The gradient through a row normalisation, element e of row r = e / k:
//   d = (g_e − along_r·unit_e) / norm_r;  out_e = out_e + d (accumulate) or d.
// out may be g (in place).
extern "C" __global__ void project_rows(float* out, const float* g, const float* unit,
                                        const double* along, const double* norm, long long k,
                                        int accumulate, long long count) {
    GRID_STRIDE(e, count) {
        long long r = e / k;
        double d = ((double)g[e] - along[r] * (double)unit[e]) / norm[r];
        out[e] = accumulate ? (float)((double)out[e] + d) : (float)d;
    }
}

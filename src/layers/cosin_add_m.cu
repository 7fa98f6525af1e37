// CosinAddm (ArcFace's additive angular margin on cosine scores c, M × C; the
// host first copies c to the output, and dy to dx for backward). Per sample i
// with target y, c = min(c_iy, 1), θ = arccos c, t = cos(π − m), in double:
//   out_iy = c·cos m − sin θ·sin m  (= cos(θ + m)) if c > t,   else c − m·sin m;
//   slope_i = cos m + sin m·c/sin θ if c > t and sin θ > 0,    else 1,
// and backward dx_iy = dy_iy·slope_i. sin θ = √max(1 − c², 0).
// A label outside [0, C) counts in `bad` (the host reports it), sample skipped.

// cos(θ + m) at a target cosine c, and its slope (the rule above).
__device__ inline double cos_add_m(double c, double m, double* slope) {
    const double pi = 3.141592653589793;
    c = fmin(c, 1.0);
    *slope = 1.0;
    if (c <= cos(pi - m)) return c - m * sin(m);
    double sin_t = sqrt(fmax(1.0 - c * c, 0.0));
    if (sin_t > 0.0) *slope = cos(m) + sin(m) * c / sin_t;
    return c * cos(m) - sin_t * sin(m);
}

extern "C" __global__ void cosin_add_m_forward(const float* x, const float* label, float* out,
                                               double* slope, double m, long long c,
                                               long long rows, int* bad) {
    GRID_STRIDE(i, rows) {
        long long y = class_label(label[i], c);
        if (y < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        out[i * c + y] = (float)cos_add_m((double)x[i * c + y], m, &slope[i]);
    }
}

extern "C" __global__ void cosin_add_m_backward(const float* label, const double* slope,
                                                float* dx, long long c, long long rows) {
    GRID_STRIDE(i, rows) {
        long long y = class_label(label[i], c);
        if (y >= 0) dx[i * c + y] = (float)((double)dx[i * c + y] * slope[i]);
    }
}

// AdaCosAddmScale: CosinAddm's target rule, then the adaptive scale s. With s_0
// the previous forward's scale, over all M·C cosines c (in double):
//   B = (1/M)·Σ_i [1 + Σ_{j≠y_i} e^(s_0·c_ij)],  θ_med = min(mean arccos(clamp(c)), π/4),
//   s = ln B / cos θ_med   (adacos_statistics gives per-block Σ of the two terms;
//   loss_sum (loss.cu) adds them and the host forms s);
//   out = s·c, out_iy = s·cos(θ + m);  backward dx = s·dy, dx_iy = s·dy·slope_i.
// Launch of adacos_statistics: any grid, blockDim a power of two, blockDim
// doubles of shared memory; the partials hold gridDim.x values each. A label
// outside [0, C) counts in `bad`.
extern "C" __global__ void adacos_statistics(const float* x, const float* label, double* b_part,
                                             double* theta_part, double s0, long long c,
                                             long long count, int* bad) {
    extern __shared__ double scratch[];
    double b = 0.0, theta = 0.0;
    GRID_STRIDE(e, count) {
        long long y = class_label(label[e / c], c);
        if (y < 0 && e % c == 0) atomicAdd(bad, 1);
        double v = x[e];
        theta += acos(fmin(fmax(v, -1.0), 1.0));
        b += y == e % c ? 1.0 : exp(s0 * v);
    }
    b = block_sum(b, scratch);
    theta = block_sum(theta, scratch);
    if (threadIdx.x == 0) {
        b_part[blockIdx.x] = b;
        theta_part[blockIdx.x] = theta;
    }
}

extern "C" __global__ void adacos_forward(const float* x, const float* label, float* out,
                                          double* slope, double s, double m, long long c,
                                          long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c;
        if (class_label(label[i], c) == e % c)
            out[e] = (float)(s * cos_add_m((double)x[e], m, &slope[i]));
        else
            out[e] = (float)(s * (double)x[e]);
    }
}

extern "C" __global__ void adacos_backward(const float* dy, const float* label,
                                           const double* slope, float* dx, double s, long long c,
                                           long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c;
        double g = s * (double)dy[e];
        dx[e] = (float)(class_label(label[i], c) == e % c ? g * slope[i] : g);
    }
}

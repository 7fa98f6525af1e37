// CosinAddm (ArcFace's additive angular margin on cosine scores c, M × C; the
// host first copies c to the output, and dy to dx for backward). Per sample i
// with target y, c = min(c_iy, 1), θ = arccos c, t = cos(π − m), in double:
//   out_iy = c·cos m − sin θ·sin m  (= cos(θ + m)) if c > t,   else c − m·sin m;
//   slope_i = cos m + sin m·c/sin θ if c > t and sin θ > 0,    else 1,
// and backward dx_iy = dy_iy·slope_i. sin θ = √max(1 − c², 0).
// A label outside [0, C) counts in `bad` (the host reports it), sample skipped.

extern "C" __global__ void cosin_add_m_forward(const float* x, const float* label, float* out,
                                               double* slope, double m, long long c,
                                               long long rows, int* bad) {
    const double pi = 3.141592653589793;
    GRID_STRIDE(i, rows) {
        long long y = class_label(label[i], c);
        if (y < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        double v = fmin((double)x[i * c + y], 1.0), value, s = 1.0;
        if (v <= cos(pi - m)) {
            value = v - m * sin(m);
        } else {
            double sin_t = sqrt(fmax(1.0 - v * v, 0.0));
            value = v * cos(m) - sin_t * sin(m);
            if (sin_t > 0.0) s = cos(m) + sin(m) * v / sin_t;
        }
        out[i * c + y] = (float)value;
        slope[i] = s;
    }
}

extern "C" __global__ void cosin_add_m_backward(const float* label, const double* slope,
                                                float* dx, long long c, long long rows) {
    GRID_STRIDE(i, rows) {
        long long y = class_label(label[i], c);
        if (y >= 0) dx[i * c + y] = (float)((double)dx[i * c + y] * slope[i]);
    }
}

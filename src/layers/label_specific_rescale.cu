// LabelSpecificRescale (NormFace), when the layer rescales (TRAIN, or TEST with
// rescale_test): the host copies x to the output and forms w (annealed or not).
// Per element of sample i with target y, in double at the target:
//   j = y, w ≠ 1 and (not for_ip, or x > 0):
//     out = w·x (+ (1 − w) with bias_fix), slope w;
//     power_on_positive: out = sign(x)·|x|^w, slope w·|x|^(w−1);
//   j = y otherwise: slope 1;   j ≠ y: out = v·x in float when v ≠ 1.
// Backward (a copy of dy first): dx_iy = dx·slope_i in double, dx_ij = dx·v.
// A label outside [0, C) counts in `bad` (the host reports it), row left alone.

extern "C" __global__ void label_specific_rescale_forward(const float* label, float* out,
                                                          double* slope, float w, float v,
                                                          int for_ip, int power_on_positive,
                                                          int bias_fix, long long c,
                                                          long long count, int* bad) {
    GRID_STRIDE(e, count) {
        long long i = e / c, j = e % c, y = class_label(label[i], c);
        if (y < 0) {
            if (j == 0) atomicAdd(bad, 1);
            continue;
        }
        if (j != y) {
            if (v != 1.0f) out[e] *= v;
            continue;
        }
        double x = out[e], wf = w, s = 1.0;
        if (w != 1.0f && (!for_ip || x > 0.0)) {
            if (power_on_positive) {
                s = wf * pow(fabs(x), wf - 1.0);
                out[e] = (float)(copysign(1.0, x) * pow(fabs(x), wf));
            } else {
                s = wf;
                out[e] = (float)(x * wf + (bias_fix ? 1.0 - wf : 0.0));
            }
        }
        slope[i] = s;
    }
}

extern "C" __global__ void label_specific_rescale_backward(const float* label, const double* slope,
                                                           float* dx, float v, long long c,
                                                           long long count) {
    GRID_STRIDE(e, count) {
        long long i = e / c;
        double f = class_label(label[i], c) == e % c ? slope[i] : (double)v;
        dx[e] = (float)((double)dx[e] * f);
    }
}

// FocalLoss after the softmax kernel (softmax.cu) has written p (outer × C ×
// inner). Per position k with label l (not ignore_label), p_t = p at l:
//   ℓ(p) = −α·b^γ·ln max(p, FLT_MIN),  b = 1 − p (ORIGIN) or 1 + p (ONEADDP),
//   ℓ'(p) = −α·(γ·b^(γ−1)·b'·ln max(p, FLT_MIN) + b^γ/max(p, FLT_MIN)), b' = ∓1,
// in double from the float p. focal_loss_forward writes ℓ(p_t) and 1 per
// position (0 and 0 where ignored; a label outside [0, C) counts in `bad`);
// loss_sum (loss.cu) adds each, the host forms the normaliser D.
// Backward, per element j of position k: dx_j = scale·ℓ'(p_t)·p_t·(δ_jl − p_j),
// scale = loss_weight/D, 0 where ignored.

__device__ inline void focal(float p, double alpha, double gamma, int oneaddp, double* ell,
                             double* slope) {
    const float flt_min = 1.17549435e-38f;
    double b = oneaddp ? 1.0 + (double)p : 1.0 - (double)p, db = oneaddp ? 1.0 : -1.0;
    double lp = log((double)fmaxf(p, flt_min));
    double bg = pow(b, gamma);
    double dbg = gamma == 0.0 ? 0.0 : gamma * pow(b, gamma - 1.0) * db;
    *ell = -alpha * bg * lp;
    *slope = -alpha * (dbg * lp + bg / fmax((double)p, (double)flt_min));
}

extern "C" __global__ void focal_loss_forward(const float* prob, const float* label, double* term,
                                              double* counted, double alpha, double gamma,
                                              int oneaddp, long long channels, long long inner,
                                              int has_ignore, int ignore_label,
                                              long long positions, int* bad) {
    GRID_STRIDE(k, positions) {
        term[k] = 0.0;
        counted[k] = 0.0;
        if (ignored_label(label[k], has_ignore, ignore_label)) continue;
        long long l = class_label(label[k], channels);
        if (l < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        double ell, slope;
        focal(prob[((k / inner) * channels + l) * inner + k % inner], alpha, gamma, oneaddp, &ell,
              &slope);
        term[k] = ell;
        counted[k] = 1.0;
    }
}

extern "C" __global__ void focal_loss_backward(const float* prob, const float* label, float* dx,
                                               double scale, double alpha, double gamma,
                                               int oneaddp, long long channels, long long inner,
                                               int has_ignore, int ignore_label, long long count) {
    GRID_STRIDE(i, count) {
        long long c = (i / inner) % channels, k = (i / (channels * inner)) * inner + i % inner;
        long long l = class_label(label[k], channels);
        if (ignored_label(label[k], has_ignore, ignore_label) || l < 0) {
            dx[i] = 0.0f;
            continue;
        }
        float pt = prob[((k / inner) * channels + l) * inner + k % inner];
        double ell, slope;
        focal(pt, alpha, gamma, oneaddp, &ell, &slope);
        double f = scale * slope * (double)pt;
        dx[i] = (float)(f * ((c == l ? 1.0 : 0.0) - (double)prob[i]));
    }
}

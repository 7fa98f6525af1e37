// InfogainLoss after the softmax kernel (softmax.cu) has written p (outer × C ×
// inner); H is C × C, r_l = Σ_k H[l, k]. Per position with label l (not
// ignore_label), in double:
//   ℓ = −Σ_k H[l, k]·ln(max(p_k, FLT_MIN)),
// infogain_loss_forward writes ℓ and 1 per position (0 and 0 where ignored; a
// label outside [0, C) counts in `bad`); loss_sum (loss.cu) adds each and the
// host divides by the normaliser D.
// Backward, scale = loss_weight/D: dx_k = scale·(p_k·r_l − H[l, k]), 0 where ignored.

extern "C" __global__ void infogain_loss_forward(const float* prob, const float* label,
                                                 const float* h, double* term, double* counted,
                                                 long long channels, long long inner,
                                                 int has_ignore, int ignore_label,
                                                 long long positions, int* bad) {
    const float flt_min = 1.17549435e-38f;
    GRID_STRIDE(pos, positions) {
        term[pos] = 0.0;
        counted[pos] = 0.0;
        if (ignored_label(label[pos], has_ignore, ignore_label)) continue;
        long long l = class_label(label[pos], channels);
        if (l < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        long long o = pos / inner, i = pos % inner;
        double sum = 0.0;
        for (long long k = 0; k < channels; ++k)
            sum -= (double)h[l * channels + k] * log((double)fmaxf(prob[(o * channels + k) * inner + i], flt_min));
        term[pos] = sum;
        counted[pos] = 1.0;
    }
}

extern "C" __global__ void infogain_loss_backward(const float* prob, const float* label,
                                                  const float* h, float* dx, double scale,
                                                  long long channels, long long inner,
                                                  int has_ignore, int ignore_label,
                                                  long long count) {
    GRID_STRIDE(e, count) {
        long long k = (e / inner) % channels, pos = (e / (channels * inner)) * inner + e % inner;
        long long l = class_label(label[pos], channels);
        if (ignored_label(label[pos], has_ignore, ignore_label) || l < 0) {
            dx[e] = 0.0f;
            continue;
        }
        double r = 0.0;
        for (long long j = 0; j < channels; ++j) r += (double)h[l * channels + j];
        dx[e] = (float)(scale * ((double)prob[e] * r - (double)h[l * channels + k]));
    }
}

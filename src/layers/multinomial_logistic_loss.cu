// MultinomialLogisticLoss on probabilities p (N × D), label l_n:
//   ℓ_n = −ln(max(p_n,l, 1e−20)) (double), loss = Σ ℓ_n / N (loss_sum in loss.cu,
//   then the host); backward dp_n,l = scale / max(p_n,l, 1e−20) with
//   scale = −loss_weight/N, 0 elsewhere. A label outside [0, D) counts in `bad`.

extern "C" __global__ void multinomial_logistic_loss_forward(const float* p, const float* label,
                                                             double* term, long long d,
                                                             long long rows, int* bad) {
    GRID_STRIDE(n, rows) {
        long long l = class_label(label[n], d);
        if (l < 0) {
            atomicAdd(bad, 1);
            term[n] = 0.0;
            continue;
        }
        term[n] = -log((double)fmaxf(p[n * d + l], 1e-20f));
    }
}

extern "C" __global__ void multinomial_logistic_loss_backward(const float* p, const float* label,
                                                              float* dp, double scale,
                                                              long long d, long long count) {
    GRID_STRIDE(i, count) {
        dp[i] = class_label(label[i / d], d) == i % d ? (float)(scale / (double)fmaxf(p[i], 1e-20f))
                                                      : 0.0f;
    }
}

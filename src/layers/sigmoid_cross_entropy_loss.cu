// SigmoidCrossEntropyLoss: scores x and targets t, one per score. Positions
// whose truncated target is ignore_label are skipped. Per position, in double:
//   ℓ = max(x, 0) − x·t + ln(1 + e^(−|x|))   (the stable form of the cross-entropy)
// sigmoid_cross_entropy_forward writes per block Σ ℓ and the count of positions
// used; loss_sum (loss.cu) adds each and the host divides by the normaliser.
// Backward: dx = scale·(σ(x) − t), σ(x) = ½ + ½·tanh(x/2) in float, 0 where
// ignored; scale = loss_weight / normaliser.

// Launch: any grid, blockDim a power of two, blockDim doubles of shared memory;
// `partial` and `counted` hold gridDim.x values each.
extern "C" __global__ void sigmoid_cross_entropy_forward(const float* x, const float* t,
                                                         double* partial, double* counted,
                                                         int has_ignore, int ignore_label,
                                                         long long count) {
    extern __shared__ double scratch[];
    double sum = 0.0, valid = 0.0;
    GRID_STRIDE(i, count) {
        if (ignored_label(t[i], has_ignore, ignore_label)) continue;
        double v = x[i], target = t[i];
        sum += fmax(v, 0.0) - v * target + log1p(exp(-fabs(v)));
        valid += 1.0;
    }
    sum = block_sum(sum, scratch);
    valid = block_sum(valid, scratch);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = sum;
        counted[blockIdx.x] = valid;
    }
}

extern "C" __global__ void sigmoid_cross_entropy_backward(const float* x, const float* t,
                                                          float* dx, float scale, int has_ignore,
                                                          int ignore_label, long long count) {
    GRID_STRIDE(i, count) {
        if (ignored_label(t[i], has_ignore, ignore_label)) {
            dx[i] = 0.0f;
            continue;
        }
        float sigma = 0.5f + 0.5f * tanhf(0.5f * x[i]);
        dx[i] = scale * (sigma - t[i]);
    }
}

// SoftmaxWithLoss after the softmax kernel has written the probabilities p
// (outer × C × inner). Per position k (outer·inner of them) with label l_k:
//   loss_k = −ln(max(p_{l_k}, FLT_MIN))   (0 for ignore_label)
// softmax_loss_sum reduces in one block, in a fixed order, to
//   out[0] = Σ loss_k (float accumulated in double), out[1] = valid positions,
//   out[2] = positions that hit the FLT_MIN clamp, out[3] = bad labels
// (labels are truncated toward zero, as Caffe's static_cast<int>; bad: not in
// [0, C) and not ignore_label): the host reads these four scalars and reports
// a bad label as an error, as the CPU path does.
// Backward: dx = scale·(p − onehot(l)), rows of ignored positions zero.

extern "C" __global__ void softmax_loss_sum(const float* prob, const float* label,
                                            long long channels, long long inner,
                                            long long positions, int has_ignore, int ignore_label,
                                            double* out) {
    extern __shared__ double acc[];  // 4 · blockDim doubles
    double loss = 0.0, valid = 0.0, clamped = 0.0, bad = 0.0;
    for (long long k = threadIdx.x; k < positions; k += blockDim.x) {
        float v = label[k];
        if (ignored_label(v, has_ignore, ignore_label)) continue;
        long long l = class_label(v, channels);
        if (l < 0) {
            bad += 1.0;
            continue;
        }
        float p = prob[((k / inner) * channels + l) * inner + k % inner];
        // `p < FLT_MIN` is false for NaN, which then propagates as on the CPU.
        if (p < 1.17549435e-38f) {
            p = 1.17549435e-38f;
            clamped += 1.0;
        }
        loss -= log((double)p);
        valid += 1.0;
    }
    double* a = acc;
    a[threadIdx.x] = loss;
    a[blockDim.x + threadIdx.x] = valid;
    a[2 * blockDim.x + threadIdx.x] = clamped;
    a[3 * blockDim.x + threadIdx.x] = bad;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            for (int q = 0; q < 4; ++q) a[q * blockDim.x + threadIdx.x] += a[q * blockDim.x + threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        for (int q = 0; q < 4; ++q) out[q] = a[q * blockDim.x];
}

extern "C" __global__ void softmax_loss_backward(const float* prob, const float* label,
                                                 float* dx, float scale, long long channels,
                                                 long long inner, int has_ignore,
                                                 int ignore_label, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        long long c = (i / inner) % channels;
        long long k = (i / (channels * inner)) * inner + i % inner;
        float v = label[k];
        if (ignored_label(v, has_ignore, ignore_label)) {
            dx[i] = 0.0f;
            continue;
        }
        float g = prob[i] - (class_label(v, channels) == c ? 1.0f : 0.0f);
        dx[i] = scale * g;
    }
}

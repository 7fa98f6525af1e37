// CenterLoss (legend in center_loss.rs): x_i (K values), centres c_j, y_i.
// Forward: center_loss_forward gives ‖x_i − c_{y_i}‖² per sample (double, one
// block each), loss_sum (loss.cu) adds them and the host divides by 2M.
// A label outside [0, N) counts in `bad` and the sample adds 0.
// Backward: dx_i = scale·(x_i − c_{y_i}) with scale = loss_weight/M, and the
// centre update (caffe-face's rule, not a derivative)
//   diff(c_j) += Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j),  n_j = samples of class j,
// summed in double in sample order without atomics: the thread of element e of
// the first sample of each class in the batch sums over the class's samples.

// Launch: grid = samples, blockDim a power of two, blockDim doubles of shared memory.
extern "C" __global__ void center_loss_forward(const float* x, const float* label,
                                               const float* centres, double* sample_sq,
                                               long long k, long long n, int* bad) {
    extern __shared__ double scratch[];
    const long long i = blockIdx.x, y = class_label(label[i], n);
    if (y < 0) {
        if (threadIdx.x == 0) {
            atomicAdd(bad, 1);
            sample_sq[i] = 0.0;
        }
        return;
    }
    double acc = 0.0;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) {
        double d = (double)x[i * k + e] - (double)centres[y * k + e];
        acc += d * d;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) sample_sq[i] = acc;
}

// Labels were checked by the forward.
extern "C" __global__ void center_loss_backward_data(const float* x, const float* label,
                                                     const float* centres, float* dx,
                                                     double scale, long long k, long long n,
                                                     long long count) {
    GRID_STRIDE(t, count) {
        long long y = class_label(label[t / k], n), e = t % k;
        dx[t] = (float)(scale * ((double)x[t] - (double)centres[y * k + e]));
    }
}

// One thread per element of every sample (rows·k); only a class's first sample
// in the batch does work.
extern "C" __global__ void center_loss_update_centres(const float* x, const float* label,
                                                      const float* centres, float* dc,
                                                      long long k, long long n, long long rows) {
    GRID_STRIDE(t, rows * k) {
        long long i = t / k, e = t % k, y = class_label(label[i], n);
        bool first = true;
        for (long long p = 0; p < i && first; ++p) first = class_label(label[p], n) != y;
        if (!first) continue;
        double sum = 0.0, c = centres[y * k + e];
        long long count = 0;
        for (long long p = i; p < rows; ++p) {
            if (class_label(label[p], n) != y) continue;
            sum += c - (double)x[p * k + e];
            ++count;
        }
        dc[y * k + e] = (float)((double)dc[y * k + e] + sum / (double)(1 + count));
    }
}

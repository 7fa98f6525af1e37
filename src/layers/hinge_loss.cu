// HingeLoss over N samples of D scores, label l_n, δ_nj = −1 at j = l_n, +1 else:
//   m_nj = max(0, 1 + δ_nj·x_nj) (double);  L1: ℓ = m,  L2: ℓ = m².
// hinge_loss_forward writes one partial Σ ℓ per block (a label outside [0, D)
// counts in `bad` and adds nothing); loss_sum (loss.cu) adds the partials and
// the host divides by N.
// Backward with g = loss_weight/N: L1 dx = g·δ·[m > 0], L2 dx = 2g·δ·m.

// Launch: any grid, blockDim a power of two, blockDim doubles of shared memory;
// `partial` holds gridDim.x values.
extern "C" __global__ void hinge_loss_forward(const float* x, const float* label, double* partial,
                                              int l2, long long d, long long count, int* bad) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    GRID_STRIDE(i, count) {
        long long l = class_label(label[i / d], d);
        if (l < 0) {
            if (i % d == 0) atomicAdd(bad, 1);
            continue;
        }
        double delta = l == i % d ? -1.0 : 1.0;
        double m = fmax(1.0 + delta * (double)x[i], 0.0);
        acc += l2 ? m * m : m;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" __global__ void hinge_loss_backward(const float* x, const float* label, float* dx,
                                               double g, int l2, long long d, long long count) {
    GRID_STRIDE(i, count) {
        double delta = class_label(label[i / d], d) == i % d ? -1.0 : 1.0;
        double m = fmax(1.0 + delta * (double)x[i], 0.0);
        dx[i] = (float)(l2 ? 2.0 * g * delta * m : g * delta * (m > 0.0 ? 1.0 : 0.0));
    }
}

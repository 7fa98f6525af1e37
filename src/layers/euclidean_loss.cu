// EuclideanLoss: diff = a − b (kept for backward), loss = Σ diff² / 2N.
// euclidean_loss_forward writes diff and one double partial Σ diff² per block;
// loss_sum (loss.cu) adds the partials and the host divides by 2N.
// Backward: da = α·diff with α = loss_weight/N, db with α = −loss_weight/N.

// Launch: any grid, blockDim a power of two, blockDim doubles of shared memory;
// `partial` holds gridDim.x values.
extern "C" __global__ void euclidean_loss_forward(const float* a, const float* b, float* diff,
                                                  double* partial, long long count) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    GRID_STRIDE(e, count) {
        float d = a[e] - b[e];
        diff[e] = d;
        acc += (double)d * (double)d;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" __global__ void euclidean_loss_backward(const float* diff, float* dx, float alpha,
                                                   long long count) {
    GRID_STRIDE(e, count) { dx[e] = alpha * diff[e]; }
}

// The loss layers' last step: out[0] = Σ_i v_i over n partial sums in double
// (per sample or per block, written by the layer's own kernel), in one block
// and a fixed order, so a loss is the same on every run. The host divides by
// the layer's normaliser.
// Launch: one block, blockDim a power of two, blockDim doubles of shared memory.

extern "C" __global__ void loss_sum(const double* v, long long n, double* out) {
    extern __shared__ double scratch[];
    double acc = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) acc += v[i];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = acc;
}

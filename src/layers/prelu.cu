// PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel c (or one shared:
// then `channels` is 1 and every element maps to slope 0).
//   dx = dy if x > 0, else a_c·dy
//   da_c += Σ_{x ≤ 0} dy·x   over the batch and the plane of channel c.
// Layout N×C×(inner); element i is in channel (i / inner) % channels.

extern "C" __global__ void prelu_forward(const float* x, const float* slope, float* y,
                                         long long inner, long long channels, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float v = x[i];
        y[i] = v > 0.0f ? v : slope[(i / inner) % channels] * v;
    }
}

extern "C" __global__ void prelu_backward_data(const float* x, const float* dy, const float* slope,
                                               float* dx, long long inner, long long channels,
                                               long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = x[i] > 0.0f ? dy[i] : slope[(i / inner) % channels] * dy[i];
    }
}

// One block per channel: the block sums dy·x over x ≤ 0 across every sample's
// plane of that channel and adds it to dslope[c]. Launch with `channels`
// blocks of a power-of-two size ≤ 1024 and blockDim.x floats of shared memory.
// `shared_slope` (one slope for all channels) sums the whole blob into dslope[0]
// with a single block.
extern "C" __global__ void prelu_backward_slope(const float* x, const float* dy, float* dslope,
                                                long long inner, long long channels,
                                                long long batch) {
    extern __shared__ float partial[];
    const long long c = blockIdx.x;
    float acc = 0.0f;
    const long long per_channel = batch * inner;
    for (long long k = threadIdx.x; k < per_channel; k += blockDim.x) {
        long long sample = k / inner, j = k % inner;
        long long i = (sample * channels + c) * inner + j;
        float v = x[i];
        if (v <= 0.0f) acc += dy[i] * v;
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) dslope[c] += partial[0];
}

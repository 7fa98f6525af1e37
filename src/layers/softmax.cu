// Softmax over axis of extent C, layout outer × C × inner: one block per
// (outer, inner) row, reducing with the row's maximum subtracted first:
//   y_c = e^{x_c − m} / Σ_j e^{x_j − m},   m = max_j x_j.
// Backward: dx_c = y_c·(dy_c − Σ_j dy_j·y_j).
// Launch: grid = outer·inner blocks, blockDim a power of two ≤ 1024,
// blockDim floats of shared memory.

__device__ inline float block_reduce(float v, float* scratch, bool take_max) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float a = scratch[threadIdx.x], b = scratch[threadIdx.x + s];
            scratch[threadIdx.x] = take_max ? fmaxf(a, b) : a + b;
        }
        __syncthreads();
    }
    float r = scratch[0];
    __syncthreads();
    return r;
}

extern "C" __global__ void softmax_forward(const float* x, float* y, long long channels,
                                           long long inner) {
    extern __shared__ float scratch[];
    long long row = blockIdx.x;
    long long base = (row / inner) * channels * inner + row % inner;
    float m = __int_as_float(0xff800000);  // −∞
    for (long long c = threadIdx.x; c < channels; c += blockDim.x) m = fmaxf(m, x[base + c * inner]);
    m = block_reduce(m, scratch, true);
    float sum = 0.0f;
    for (long long c = threadIdx.x; c < channels; c += blockDim.x) {
        float e = expf(x[base + c * inner] - m);
        y[base + c * inner] = e;
        sum += e;
    }
    sum = block_reduce(sum, scratch, false);
    for (long long c = threadIdx.x; c < channels; c += blockDim.x) y[base + c * inner] /= sum;
}

extern "C" __global__ void softmax_backward(const float* y, const float* dy, float* dx,
                                            long long channels, long long inner) {
    extern __shared__ float scratch[];
    long long row = blockIdx.x;
    long long base = (row / inner) * channels * inner + row % inner;
    float dot = 0.0f;
    for (long long c = threadIdx.x; c < channels; c += blockDim.x)
        dot += dy[base + c * inner] * y[base + c * inner];
    dot = block_reduce(dot, scratch, false);
    for (long long c = threadIdx.x; c < channels; c += blockDim.x) {
        long long i = base + c * inner;
        dx[i] = y[i] * (dy[i] - dot);
    }
}

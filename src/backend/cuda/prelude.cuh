// Prepended to every kernel source before NVRTC compiles it (kernels.rs; a
// `#line` directive after it keeps the source's own line numbers in messages).
// Helpers the margin and loss kernels share.

// Grid-stride loop over 64-bit indices: element counts pass 2^31.
#define GRID_STRIDE(i, n)                                                                    \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);           \
         i += (long long)blockDim.x * gridDim.x)

// Block-wide sum in double, for the sums the CPU path accumulates in f64: every
// thread passes its partial and gets the total. `scratch` is blockDim.x doubles
// of shared memory; blockDim.x a power of two. The tree order is fixed, so the
// result is the same on every run.
__device__ inline double block_sum(double v, double* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    double r = scratch[0];
    __syncthreads();  // scratch is reused by the next call
    return r;
}

// Σ_e a_e·b_e over one row of length k, in double, by the whole block.
__device__ inline double block_dot(const float* a, const float* b, long long k, double* scratch) {
    double acc = 0.0;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) acc += (double)a[e] * (double)b[e];
    return block_sum(acc, scratch);
}

// Caffe's sign: −1, 0 or 1 (0 at 0).
__device__ inline double sgn(double v) { return (double)((v > 0.0) - (v < 0.0)); }

// A class label as the CPU path reads it (Caffe's static_cast<int>, truncation
// toward zero): its index, or −1 when it is not finite or outside [0, n).
__device__ inline long long class_label(float v, long long n) {
    float t = truncf(v);
    if (!isfinite(v) || t < 0.0f || t >= (float)n) return -1;
    return (long long)t;
}

// Whether a label is the loss's ignore_label, compared after truncation as the
// CPU path does (2.5 is ignored when ignore_label is 2).
__device__ inline bool ignored_label(float v, int has_ignore, int ignore_label) {
    float t = truncf(v);
    return has_ignore && isfinite(t) && t == (float)ignore_label;
}

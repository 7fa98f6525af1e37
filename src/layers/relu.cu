// ReLU with Caffe's leaky slope ν (relu_param.negative_slope):
//   y = x if x > 0, else ν·x;   dx = dy if x > 0, else ν·dy.
// Backward tests the layer's input x, as the CPU path does. Grid-stride loops
// over 64-bit indices: a SphereFace batch-256 activation passes 2^31 elements.

extern "C" __global__ void relu_forward(const float* x, float* y, float slope, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float v = x[i];
        y[i] = v > 0.0f ? v : slope * v;
    }
}

extern "C" __global__ void relu_backward(const float* x, const float* dy, float* dx, float slope,
                                         long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
    }
}

// Sigmoid: y = 1 / (1 + e^{-x});  dx = dy·y·(1 − y) (from the top's values).

extern "C" __global__ void sigmoid_forward(const float* x, float* y, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = 1.0f / (1.0f + expf(-x[i]));
    }
}

extern "C" __global__ void sigmoid_backward(const float* y, const float* dy, float* dx,
                                            long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float s = y[i];
        dx[i] = dy[i] * s * (1.0f - s);
    }
}

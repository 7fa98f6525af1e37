// TanH: y = tanh(x);  dx = dy·(1 − y²) (from the top's values).

extern "C" __global__ void tanh_forward(const float* x, float* y, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = tanhf(x[i]);
    }
}

extern "C" __global__ void tanh_backward(const float* y, const float* dy, float* dx, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float t = y[i];
        dx[i] = dy[i] * (1.0f - t * t);
    }
}

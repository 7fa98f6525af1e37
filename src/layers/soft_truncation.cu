// SoftTruncation: y = 1 − e^(−x/c) = −expm1(−x/c);  dx = dy·e^(−x/c)/c, the
// exponential in double and each result rounded once, as the CPU path.

extern "C" __global__ void soft_truncation_forward(const float* x, float* y, float c,
                                                   long long n) {
    GRID_STRIDE(i, n) { y[i] = (float)(-expm1(-(double)x[i] / (double)c)); }
}

extern "C" __global__ void soft_truncation_backward(const float* x, const float* dy, float* dx,
                                                    float c, long long n) {
    GRID_STRIDE(i, n) { dx[i] = dy[i] * (float)(exp(-(double)x[i] / (double)c) / (double)c); }
}

// Eltwise over K bottoms, applied one bottom at a time so the kernel needs no
// pointer arrays:
//   SUM:  y = Σ_k c_k·x_k        (eltwise_sum_accumulate, y starts at 0)
//   PROD: y = Π_k x_k            (eltwise_prod_accumulate, y starts as x_0)
//   MAX:  y = max_k x_k, argmax kept in `index` (eltwise_max_accumulate,
//         y and index start from bottom 0; ties keep the earlier bottom).
// Backward: SUM dx_k = c_k·dy;  PROD dx_k = dy·y/x_k (Caffe's stable_prod_grad
// false form; the layer computes the product of the others when x_k is 0);
// MAX dx_k = dy where index = k.

extern "C" __global__ void eltwise_sum_accumulate(const float* x, float coeff, float* y,
                                                  long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] += coeff * x[i];
    }
}

extern "C" __global__ void eltwise_prod_accumulate(const float* x, float* y, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] *= x[i];
    }
}

extern "C" __global__ void eltwise_max_accumulate(const float* x, int k, float* y, int* index,
                                                  long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        if (x[i] > y[i]) {
            y[i] = x[i];
            index[i] = k;
        }
    }
}

extern "C" __global__ void eltwise_sum_backward(const float* dy, float coeff, float* dx,
                                                long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = coeff * dy[i];
    }
}

// dx_k = dy · Π_{j≠k} x_j, with the product of the others precomputed in `others`.
extern "C" __global__ void eltwise_prod_backward(const float* dy, const float* others, float* dx,
                                                 long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = dy[i] * others[i];
    }
}

extern "C" __global__ void eltwise_max_backward(const float* dy, const int* index, int k,
                                                float* dx, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = index[i] == k ? dy[i] : 0.0f;
    }
}

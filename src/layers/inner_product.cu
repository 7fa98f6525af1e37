// InnerProduct `normalize: true` (and MarginInnerProduct, which normalises its
// weights the same way): every row w_j of W (K values) replaced in place by
// w_j/‖w_j‖, with no epsilon (a zero row becomes NaN, as on the CPU), the norm
// summed in double and the row left as it is when ‖w_j‖ = 1. The norms before
// the update go to `norms` (MarginInnerProduct's exact gradient needs them).
// The products themselves are cuBLAS GEMMs.
// Launch: grid = rows, blockDim a power of two ≤ 1024, blockDim doubles of
// shared memory.

extern "C" __global__ void inner_product_normalize_rows(float* w, double* norms, long long k) {
    extern __shared__ double scratch[];
    float* row = w + blockIdx.x * k;
    double norm = sqrt(block_dot(row, row, k, scratch));
    if (threadIdx.x == 0) norms[blockIdx.x] = norm;
    if (norm == 1.0) return;
    double inv = 1.0 / norm;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) row[e] = (float)((double)row[e] * inv);
}

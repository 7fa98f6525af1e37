// TripletLoss (legend in mod.rs), m = margin, D(u, v) = ‖u − v‖² in double.
// Three bottoms (anchor a, positive p, negative n), one block per triplet row:
//   diff_ap = a − p, diff_an = a − n (float, kept for backward),
//   h_i = m + D(a_i, p_i) − D(a_i, n_i), term_i = max(0, h_i), and the row's class
//   (0 hard D(a,n) < D(a,p), 1 semi-hard D(a,n) < D(a,p) + m, 2 easy) counted in
//   `counts`; loss_sum (loss.cu) adds the terms and the host divides by 2N.
// Backward, scale = loss_weight/N, where h_i > 0 (else 0), in double:
//   da = scale·(diff_ap − diff_an), dp = −scale·diff_ap, dn = scale·diff_an.
// Two bottoms (mining): triplet_loss_distances gives the N × N matrix D from
// differences (not the Gram form, which loses small distances); the selection
// runs on the host from it, and the gradient g/T·C·X is a cuBLAS GEMM.

// Launch: grid = rows, blockDim a power of two, blockDim doubles of shared memory.
extern "C" __global__ void triplet_loss_forward(const float* a, const float* p, const float* n,
                                                float* diff_ap, float* diff_an, double* hinge,
                                                double* term, int* counts, double margin,
                                                long long k) {
    extern __shared__ double scratch[];
    const long long base = blockIdx.x * k;
    double sap = 0.0, san = 0.0;
    for (long long e = threadIdx.x; e < k; e += blockDim.x) {
        float dp = a[base + e] - p[base + e], dn = a[base + e] - n[base + e];
        diff_ap[base + e] = dp;
        diff_an[base + e] = dn;
        sap += (double)dp * (double)dp;
        san += (double)dn * (double)dn;
    }
    double dap = block_sum(sap, scratch), dan = block_sum(san, scratch);
    if (threadIdx.x != 0) return;
    double h = margin + dap - dan;
    hinge[blockIdx.x] = h;
    term[blockIdx.x] = fmax(h, 0.0);
    atomicAdd(&counts[dan < dap ? 0 : (dan < dap + margin ? 1 : 2)], 1);
}

// `which`: 0 anchor, 1 positive, 2 negative.
extern "C" __global__ void triplet_loss_backward(const float* diff_ap, const float* diff_an,
                                                 const double* hinge, float* dx, double scale,
                                                 int which, long long k, long long count) {
    GRID_STRIDE(e, count) {
        double ap = diff_ap[e], an = diff_an[e];
        double v = which == 0 ? ap - an : (which == 1 ? -ap : an);
        dx[e] = hinge[e / k] > 0.0 ? (float)(scale * v) : 0.0f;
    }
}

// D_ij = Σ_t (x_it − x_jt)² in double, t in order; one thread per (i, j).
extern "C" __global__ void triplet_loss_distances(const float* x, double* d, long long k,
                                                  long long n) {
    GRID_STRIDE(e, n * n) {
        const float *xi = x + (e / n) * k, *xj = x + (e % n) * k;
        double acc = 0.0;
        for (long long t = 0; t < k; ++t) {
            double v = (double)xi[t] - (double)xj[t];
            acc += v * v;
        }
        d[e] = acc;
    }
}

// Pooling of N·C planes, H×W → Ho×Wo, Caffe's window rule per axis:
//   a = o·s − p,  e = min(a + k, len + p),  AVE divides by (e_h − a_h)(e_w − a_w)
//   (padding counted, overhang past it not), then the window is clipped to
//   [max(a, 0), min(e, len)).
// MAX keeps the first maximal element's plane index h·W + w in `index`.
// Backward gathers for each input element the outputs whose windows hold it
// (no atomics: the same sums in the same order on every run).
// STOCHASTIC pooling has no kernel here; the layer runs it on the CPU.

struct Geometry {
    int h, w, ho, wo, kh, kw, sh, sw, ph, pw;
};

__device__ inline void window(int o, int k, int s, int p, int len, int* start, int* end,
                              int* extent) {
    int a = o * s - p;
    int e = min(a + k, len + p);
    *extent = e - a;
    *start = max(a, 0);
    *end = min(e, len);
}

extern "C" __global__ void pooling_max_forward(const float* x, float* y, int* index, Geometry g,
                                               long long outputs) {
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < outputs;
         t += (long long)blockDim.x * gridDim.x) {
        int j = t % g.wo, i = (t / g.wo) % g.ho;
        long long plane = t / ((long long)g.ho * g.wo);
        const float* xp = x + plane * g.h * g.w;
        int r0, r1, c0, c1, eh, ew;
        window(i, g.kh, g.sh, g.ph, g.h, &r0, &r1, &eh);
        window(j, g.kw, g.sw, g.pw, g.w, &c0, &c1, &ew);
        int best = r0 * g.w + c0;
        for (int r = r0; r < r1; ++r)
            for (int c = c0; c < c1; ++c)
                if (xp[r * g.w + c] > xp[best]) best = r * g.w + c;
        y[t] = xp[best];
        index[t] = best;
    }
}

extern "C" __global__ void pooling_ave_forward(const float* x, float* y, Geometry g,
                                               long long outputs) {
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < outputs;
         t += (long long)blockDim.x * gridDim.x) {
        int j = t % g.wo, i = (t / g.wo) % g.ho;
        long long plane = t / ((long long)g.ho * g.wo);
        const float* xp = x + plane * g.h * g.w;
        int r0, r1, c0, c1, eh, ew;
        window(i, g.kh, g.sh, g.ph, g.h, &r0, &r1, &eh);
        window(j, g.kw, g.sw, g.pw, g.w, &c0, &c1, &ew);
        float sum = 0.0f;
        for (int r = r0; r < r1; ++r)
            for (int c = c0; c < c1; ++c) sum += xp[r * g.w + c];
        y[t] = sum / (float)(eh * ew);
    }
}

// Outputs along one axis whose clipped window contains input position `x`:
// o·s − p ≤ x < o·s − p + k, i.e. o in [ceil((x + p − k + 1)/s), floor((x + p)/s)],
// intersected with [0, out).
__device__ inline void covering(int x, int k, int s, int p, int out, int* first, int* last) {
    int lo = x + p - k + 1;
    *first = lo <= 0 ? 0 : (lo + s - 1) / s;
    *last = min((x + p) / s, out - 1);
}

extern "C" __global__ void pooling_max_backward(const float* dy, const int* index, float* dx,
                                                Geometry g, long long inputs) {
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < inputs;
         t += (long long)blockDim.x * gridDim.x) {
        int c = t % g.w, r = (t / g.w) % g.h;
        long long plane = t / ((long long)g.h * g.w);
        const float* dyp = dy + plane * g.ho * g.wo;
        const int* ip = index + plane * g.ho * g.wo;
        int i0, i1, j0, j1;
        covering(r, g.kh, g.sh, g.ph, g.ho, &i0, &i1);
        covering(c, g.kw, g.sw, g.pw, g.wo, &j0, &j1);
        int me = r * g.w + c;
        float acc = 0.0f;
        for (int i = i0; i <= i1; ++i)
            for (int j = j0; j <= j1; ++j)
                if (ip[i * g.wo + j] == me) acc += dyp[i * g.wo + j];
        dx[t] = acc;
    }
}

extern "C" __global__ void pooling_ave_backward(const float* dy, float* dx, Geometry g,
                                                long long inputs) {
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < inputs;
         t += (long long)blockDim.x * gridDim.x) {
        int c = t % g.w, r = (t / g.w) % g.h;
        long long plane = t / ((long long)g.h * g.w);
        const float* dyp = dy + plane * g.ho * g.wo;
        int i0, i1, j0, j1;
        covering(r, g.kh, g.sh, g.ph, g.ho, &i0, &i1);
        covering(c, g.kw, g.sw, g.pw, g.wo, &j0, &j1);
        float acc = 0.0f;
        for (int i = i0; i <= i1; ++i) {
            int a0, a1, eh;
            window(i, g.kh, g.sh, g.ph, g.h, &a0, &a1, &eh);
            for (int j = j0; j <= j1; ++j) {
                int b0, b1, ew;
                window(j, g.kw, g.sw, g.pw, g.w, &b0, &b1, &ew);
                acc += dyp[i * g.wo + j] / (float)(eh * ew);
            }
        }
        dx[t] = acc;
    }
}

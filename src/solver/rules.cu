// Caffe's update rules on the device, element by element, in the same order
// of operations as rules.rs (legend there): each kernel turns the gradient g
// into the step s in place, updates the histories h0/h1, and the weights are
// then updated with w −= s by solver_apply_step.
// `rule`: 0 SGD, 1 Nesterov, 2 AdaGrad, 3 RMSProp, 4 AdaDelta, 5 Adam (the
// order of rules.rs's `Rule`). `rate` is lr·lr_mult, or for Adam the
// bias-corrected rate the host forms in f64 and rounds once (adam_rate).
// Contraction to FMA is disabled (__fmul_rn/__fadd_rn) so the device rounds
// each operation as the CPU path does.

extern "C" __global__ void solver_steps(int rule, float* g, float* h0, float* h1, float rate,
                                        float mu, float beta2, float rho, float delta,
                                        long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float gi = g[i];
        switch (rule) {
        case 0: {
            float h = __fadd_rn(__fmul_rn(mu, h0[i]), __fmul_rn(rate, gi));
            h0[i] = h;
            g[i] = h;
            break;
        }
        case 1: {
            float old = h0[i];
            float h = __fadd_rn(__fmul_rn(mu, old), __fmul_rn(rate, gi));
            h0[i] = h;
            g[i] = __fsub_rn(__fmul_rn(__fadd_rn(1.0f, mu), h), __fmul_rn(mu, old));
            break;
        }
        case 2: {
            float h = __fadd_rn(h0[i], __fmul_rn(gi, gi));
            h0[i] = h;
            g[i] = __fmul_rn(rate, __fdiv_rn(gi, __fadd_rn(__fsqrt_rn(h), delta)));
            break;
        }
        case 3: {
            float h = __fadd_rn(__fmul_rn(rho, h0[i]), __fmul_rn(__fsub_rn(1.0f, rho), __fmul_rn(gi, gi)));
            h0[i] = h;
            g[i] = __fmul_rn(rate, __fdiv_rn(gi, __fadd_rn(__fsqrt_rn(h), delta)));
            break;
        }
        case 4: {
            float a = __fadd_rn(__fmul_rn(mu, h0[i]), __fmul_rn(__fsub_rn(1.0f, mu), __fmul_rn(gi, gi)));
            float u = __fmul_rn(gi, __fsqrt_rn(__fdiv_rn(__fadd_rn(h1[i], delta), __fadd_rn(a, delta))));
            h0[i] = a;
            h1[i] = __fadd_rn(__fmul_rn(mu, h1[i]), __fmul_rn(__fsub_rn(1.0f, mu), __fmul_rn(u, u)));
            g[i] = __fmul_rn(rate, u);
            break;
        }
        default: {
            float m = __fadd_rn(__fmul_rn(mu, h0[i]), __fmul_rn(__fsub_rn(1.0f, mu), gi));
            float v = __fadd_rn(__fmul_rn(beta2, h1[i]), __fmul_rn(__fsub_rn(1.0f, beta2), __fmul_rn(gi, gi)));
            h0[i] = m;
            h1[i] = v;
            g[i] = __fmul_rn(rate, __fdiv_rn(m, __fadd_rn(__fsqrt_rn(v), delta)));
            break;
        }
        }
    }
}

// Regularisation before the rule: L2 g += λ·w; L1 g += λ·sign(w).
extern "C" __global__ void solver_regularize(const float* w, float* g, float decay, int l1,
                                             long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        float r = l1 ? (float)((w[i] > 0.0f) - (w[i] < 0.0f)) : w[i];
        g[i] = __fadd_rn(g[i], __fmul_rn(decay, r));
    }
}

// g *= scale (1/iter_size, clip_gradients' factor).
extern "C" __global__ void solver_scale(float* g, float scale, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        g[i] = __fmul_rn(g[i], scale);
    }
}

// w −= s.
extern "C" __global__ void solver_apply_step(float* w, const float* s, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        w[i] = __fsub_rn(w[i], s[i]);
    }
}

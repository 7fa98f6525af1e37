// CUDA C on the host, for checking the kernels' numerics without a GPU.
//
// The test compiles each `src/**/*.cu` file with g++ and this header forced in
// front (`-include`), as a shared library that exports the kernels (they are
// `extern "C"`) and `emu_launch`. The one change made to the source text
// before compiling: `extern __shared__ T name[];` becomes
// `T* name = emu::dynamic_shared<T>();`, since C++ has no declaration that
// gives every such array the block's one dynamic shared region.
//
// Execution model: the blocks of a grid run one after another; the threads of
// a block are fibers (ucontext) on the calling thread. A fiber runs until it
// returns or reaches __syncthreads(); once every thread of the block has done
// so, the next phase starts. So code between two barriers runs for thread 0,
// 1, 2, ... in turn (or in reverse with `reverse` set: a kernel whose result
// depends on that order has a race). A barrier reached by some threads of a
// block while others have returned is reported as an error, as a divergent
// __syncthreads() is undefined on the device. The caller serialises launches
// (the built-ins below are plain globals).
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <vector>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};

// The built-in indices, set by the scheduler before it resumes a thread.
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// A fixed-size `__shared__` array is one per block; blocks run in turn, so a
// function-local static is that.
#define __shared__ static

namespace emu {

enum : int { Ready = 0, AtBarrier = 1, Done = 2 };

struct Fiber {
    ucontext_t ctx;
    char* stack;
    int state;
};

inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline void (*body)(void*) = nullptr;
inline void* body_arg = nullptr;
inline unsigned char* shared_region = nullptr;
inline const size_t stack_bytes = 256 * 1024;

inline void entry() {
    body(body_arg);
    current->state = Done;
    // Returning resumes uc_link, the scheduler.
}

template <class T>
T* dynamic_shared() {
    return reinterpret_cast<T*>(shared_region);
}

}  // namespace emu

inline void __syncthreads() {
    emu::current->state = emu::AtBarrier;
    swapcontext(&emu::current->ctx, &emu::scheduler);
}

// Threads of a block never run at the same time, so a read-modify-write is atomic.
template <class T>
inline T atomicAdd(T* address, T v) {
    T old = *address;
    *address = old + v;
    return old;
}
inline int atomicMax(int* address, int v) {
    int old = *address;
    if (v > old) *address = v;
    return old;
}
inline int atomicExch(int* address, int v) {
    int old = *address;
    *address = v;
    return old;
}

// Math: the device's overloads and intrinsics by their host equivalents. The
// `__f*_rn` forms round each operation once, as host float arithmetic without
// contraction (the library is built with -ffp-contract=off) does.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}
inline double __longlong_as_double(long long i) {
    double d;
    memcpy(&d, &i, sizeof d);
    return d;
}

// Runs `body(arg)` as every thread of a gx·gy·gz grid of bx·by·bz blocks, with
// `shared` bytes of dynamic shared memory per block (filled with 0xff bytes,
// NaN as floats, before each block: a read before a write shows). Returns 0,
// or 1 with a message in `err`.
extern "C" int emu_launch(const unsigned* dims, size_t shared, int reverse, void (*body)(void*),
                          void* arg, char* err, size_t err_len) {
    const unsigned gx = dims[0], gy = dims[1], gz = dims[2];
    const unsigned bx = dims[3], by = dims[4], bz = dims[5];
    const size_t threads = (size_t)bx * by * bz;
    if (threads == 0 || threads > 1024 || gx == 0 || gy == 0 || gz == 0) {
        snprintf(err, err_len, "bad launch: grid %ux%ux%u, block %ux%ux%u (1..1024 threads)", gx,
                 gy, gz, bx, by, bz);
        return 1;
    }
    if (shared > 227 * 1024) {
        snprintf(err, err_len, "bad launch: %zu bytes of shared memory (a block has 227 KiB)",
                 shared);
        return 1;
    }
    gridDim = dim3{gx, gy, gz};
    blockDim = dim3{bx, by, bz};
    emu::body = body;
    emu::body_arg = arg;
    std::vector<unsigned char> region(shared + 16);
    emu::shared_region = region.data();
    std::vector<emu::Fiber> fibers(threads);
    for (auto& f : fibers) f.stack = (char*)malloc(emu::stack_bytes);
    int status = 0;
    const size_t blocks = (size_t)gx * gy * gz;
    for (size_t b = 0; b < blocks && status == 0; ++b) {
        blockIdx = uint3{(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / gx / gy)};
        memset(region.data(), 0xff, region.size());
        for (auto& f : fibers) {
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack;
            f.ctx.uc_stack.ss_size = emu::stack_bytes;
            f.ctx.uc_link = &emu::scheduler;
            makecontext(&f.ctx, emu::entry, 0);
            f.state = emu::Ready;
        }
        for (int phase = 0;; ++phase) {
            for (size_t k = 0; k < threads; ++k) {
                size_t t = reverse ? threads - 1 - k : k;
                emu::Fiber& f = fibers[t];
                if (f.state == emu::Done) continue;
                f.state = emu::Ready;
                threadIdx = uint3{(unsigned)(t % bx), (unsigned)(t / bx % by), (unsigned)(t / bx / by)};
                emu::current = &f;
                swapcontext(&emu::scheduler, &f.ctx);
            }
            size_t done = 0;
            for (auto& f : fibers) done += f.state == emu::Done;
            if (done == threads) break;
            if (done != 0) {
                snprintf(err, err_len,
                         "block (%u,%u,%u), phase %d: %zu of %zu threads returned while the others "
                         "wait at __syncthreads()",
                         blockIdx.x, blockIdx.y, blockIdx.z, phase, done, threads);
                status = 1;
                break;
            }
        }
    }
    for (auto& f : fibers) free(f.stack);
    emu::shared_region = nullptr;
    return status;
}

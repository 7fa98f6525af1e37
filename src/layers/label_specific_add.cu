// LabelSpecificAdd (AM-Softmax / CosFace), TRAIN phase: the host copies x to
// the output and forms the (annealed) bias b; then per sample i with target y
//   out_iy = x_iy + b   where x_iy > −b.
// Backward is dx = dy (a copy, or nothing in place). A label outside [0, C)
// counts in `bad` (the host reports it) and the sample is left alone.

extern "C" __global__ void label_specific_add_forward(const float* label, float* out, float bias,
                                                      long long c, long long rows, int* bad) {
    GRID_STRIDE(i, rows) {
        long long y = class_label(label[i], c);
        if (y < 0) {
            atomicAdd(bad, 1);
            continue;
        }
        float v = out[i * c + y];
        if (v > -bias) out[i * c + y] = v + bias;
    }
}

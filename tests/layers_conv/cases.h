/* cases.h - written by tests/layers_conv/gen.py with ref.npz; do not edit.
 * Each case: its name in ref.npz, the input shape, the batch size, and the
 * layer (named probe) in nncc's YAML. */
static const struct {
    const char *name, *input_shape;
    int n;
    const char *layer;
} ref_cases[] = {
    {"transpose_same_s2_n1", "[3, 4, 8]", 1,
     "Conv2DTranspose: {filters: 4, kernel_size: 3, strides: 2, padding: same, name: probe}"},
    {"transpose_same_s2_n5", "[3, 4, 8]", 5,
     "Conv2DTranspose: {filters: 4, kernel_size: 3, strides: 2, padding: same, name: probe}"},
    {"transpose_valid_rect_n1", "[3, 2, 2]", 1,
     "Conv2DTranspose: {filters: 3, kernel_size: [2, 3], strides: [3, 1], name: probe}"},
    {"transpose_valid_rect_n5", "[3, 2, 2]", 5,
     "Conv2DTranspose: {filters: 3, kernel_size: [2, 3], strides: [3, 1], name: probe}"},
    {"transpose_same_odd_nobias_n1", "[2, 3, 5]", 1,
     "Conv2DTranspose: {filters: 2, kernel_size: [5, 4], strides: [2, 1], padding: same, use_bias: false, name: probe}"},
    {"transpose_same_odd_nobias_n5", "[2, 3, 5]", 5,
     "Conv2DTranspose: {filters: 2, kernel_size: [5, 4], strides: [2, 1], padding: same, use_bias: false, name: probe}"},
    {"transpose_same_k1_n1", "[2, 2, 4]", 1,
     "Conv2DTranspose: {filters: 3, kernel_size: [1, 3], strides: 2, padding: same, name: probe}"},
    {"transpose_same_k1_n5", "[2, 2, 4]", 5,
     "Conv2DTranspose: {filters: 3, kernel_size: [1, 3], strides: 2, padding: same, name: probe}"},
    {"depthwise_same_s2_n1", "[5, 6, 3]", 1,
     "DepthwiseConv2D: {kernel_size: 3, strides: 2, padding: same, name: probe}"},
    {"depthwise_same_s2_n5", "[5, 6, 3]", 5,
     "DepthwiseConv2D: {kernel_size: 3, strides: 2, padding: same, name: probe}"},
    {"depthwise_valid_dm3_n1", "[4, 5, 2]", 1,
     "DepthwiseConv2D: {kernel_size: [2, 3], strides: [1, 2], depth_multiplier: 3, name: probe}"},
    {"depthwise_valid_dm3_n5", "[4, 5, 2]", 5,
     "DepthwiseConv2D: {kernel_size: [2, 3], strides: [1, 2], depth_multiplier: 3, name: probe}"},
    {"depthwise_same_odd_nobias_n1", "[4, 4, 16]", 1,
     "DepthwiseConv2D: {kernel_size: [4, 3], padding: same, depth_multiplier: 2, use_bias: false, name: probe}"},
    {"depthwise_same_odd_nobias_n5", "[4, 4, 16]", 5,
     "DepthwiseConv2D: {kernel_size: [4, 3], padding: same, depth_multiplier: 2, use_bias: false, name: probe}"},
    {"separable_same_n1", "[4, 5, 3]", 1,
     "SeparableConv2D: {filters: 4, kernel_size: 3, padding: same, name: probe}"},
    {"separable_same_n5", "[4, 5, 3]", 5,
     "SeparableConv2D: {filters: 4, kernel_size: 3, padding: same, name: probe}"},
    {"separable_valid_dm2_n1", "[5, 6, 2]", 1,
     "SeparableConv2D: {filters: 16, kernel_size: [3, 2], strides: 2, depth_multiplier: 2, name: probe}"},
    {"separable_valid_dm2_n5", "[5, 6, 2]", 5,
     "SeparableConv2D: {filters: 16, kernel_size: [3, 2], strides: 2, depth_multiplier: 2, name: probe}"},
    {"separable_same_s2_nobias_n1", "[5, 5, 4]", 1,
     "SeparableConv2D: {filters: 3, kernel_size: [2, 4], strides: [2, 1], padding: same, use_bias: false, name: probe}"},
    {"separable_same_s2_nobias_n5", "[5, 5, 4]", 5,
     "SeparableConv2D: {filters: 3, kernel_size: [2, 4], strides: [2, 1], padding: same, use_bias: false, name: probe}"},
};

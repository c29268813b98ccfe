// RUN: neuron-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Every verifier error names what was expected and what was found, at the op's line:col.

func.func @contracting(%a: tensor<4x8xf32>, %b: tensor<9x16xf32>) {
  %0 = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<9x16xf32>) -> tensor<4x16xf32>
  func.return
}
// CHECK: invalid.mlir:6:3: error: contracting dims differ: 8 vs 9

// -----

func.func @matmul_result(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) {
  %0 = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x15xf32>
  func.return
}
// CHECK: invalid.mlir:14:3: error: expected result shape 4x16, found 4x15

// -----

func.func @mixed_inputs(%a: tensor<4x8xbf16>, %b: tensor<8x16xf32>) {
  %0 = nt.matmul %a, %b : (tensor<4x8xbf16>, tensor<8x16xf32>) -> tensor<4x16xf32>
  func.return
}
// CHECK: error: contraction inputs must have one element type (cast explicitly), found bf16, f32

// -----

func.func @acc(%a: tensor<4x8xbf16>, %b: tensor<8x16xbf16>) {
  %0 = nt.matmul %a, %b {acc = bf16} : (tensor<4x8xbf16>, tensor<8x16xbf16>) -> tensor<4x16xf32>
  func.return
}
// CHECK: error: accumulation type must be f32, found bf16

// -----

func.func @broadcast(%a: tensor<4x8xf32>, %b: tensor<3xf32>) {
  %0 = nt.add %a, %b : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x8xf32>
  func.return
}
// CHECK: error: operand shapes do not broadcast: 4x8 vs 3

// -----

func.func @elementwise_types(%a: tensor<4x8xf32>, %b: tensor<4x8xbf16>) {
  %0 = nt.add %a, %b : (tensor<4x8xf32>, tensor<4x8xbf16>) -> tensor<4x8xf32>
  func.return
}
// CHECK: error: operands must have one element type (cast explicitly), found f32, bf16

// -----

func.func @result_type(%a: tensor<4x8xf32>) {
  %0 = nt.exp %a : (tensor<4x8xf32>) -> tensor<4x8xf16>
  func.return
}
// CHECK: error: expected result type tensor<4x8xf32>, found tensor<4x8xf16>

// -----

func.func @element_kind(%a: tensor<4x8xi32>) {
  %0 = nt.exp %a : tensor<4x8xi32>
  func.return
}
// CHECK: error: operand 0: expected a float element type, found i32

// -----

func.func @bool_logic(%a: tensor<4xf32>) {
  %0 = nt.and %a, %a : tensor<4xf32>
  func.return
}
// CHECK: error: operand 0: expected an i1 element type, found f32

// -----

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) {
  %0 = nt.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>
  func.return
}
// CHECK: error: weight expects 2 input channels (2 x 1 groups), found 3

// -----

func.func @conv_groups(%x: tensor<1x4x8x8xf32>, %w: tensor<6x2x3x3xf32>) {
  %0 = nt.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x4x8x8xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x6x6xf32>
  func.return
}
// CHECK: error: groups 4 must divide input channels 4 and output channels 6

// -----

func.func @conv_window(%x: tensor<1x2x2x2xf32>, %w: tensor<4x2x3x3xf32>) {
  %0 = nt.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x2x2xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x1x1xf32>
  func.return
}
// CHECK: error: window of extent 3 does not fit spatial dim 0 of size 2 with pads 0+0

// -----

func.func @reshape_count(%a: tensor<4x8xf32>) {
  %0 = nt.reshape %a : (tensor<4x8xf32>) -> tensor<5x8xf32>
  func.return
}
// CHECK: error: reshape must keep the element count: 32 vs 40

// -----

func.func @transpose_perm(%a: tensor<4x8xf32>) {
  %0 = nt.transpose %a {perm = array<i64: 0, 0>} : (tensor<4x8xf32>) -> tensor<4x4xf32>
  func.return
}
// CHECK: error: perm [0, 0] is not a permutation of 2 dims

// -----

func.func @softmax_axis(%a: tensor<4x8xf32>) {
  %0 = nt.softmax %a {axis = 2 : i64} : tensor<4x8xf32>
  func.return
}
// CHECK: error: axis 2 is out of range for rank 2

// -----

func.func @norm_scale(%a: tensor<4x8xf32>, %s: tensor<4xf32>) {
  %0 = nt.layer_norm %a, %s {axis = 1 : i64, epsilon = 1.0e-05 : f64} : (tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  func.return
}
// CHECK: error: scale: expected a shape that broadcasts to 8, found 4

// -----

func.func @where_cond(%c: tensor<4xf32>, %a: tensor<4xf32>) {
  %0 = nt.where %c, %a, %a : tensor<4xf32>
  func.return
}
// CHECK: error: condition: expected i1 elements, found f32

// -----

func.func @cmp_predicate(%a: tensor<4xf32>) {
  %0 = nt.cmp %a, %a {predicate = "lessthan"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  func.return
}
// CHECK: error: predicate must be one of eq, ne, lt, le, gt, ge, found 'lessthan'

// -----

func.func @cast_shape(%a: tensor<4xf32>) {
  %0 = nt.cast %a : tensor<4xf32> to tensor<5xbf16>
  func.return
}
// CHECK: error: cast must keep the shape: tensor<4xf32> to tensor<5xbf16>

// -----

func.func @float_mod(%a: tensor<4xf32>) {
  %0 = nt.mod %a, %a : tensor<4xf32>
  func.return
}
// CHECK: error: float nt.mod needs the fmod attribute

// -----

func.func @slice_range(%a: tensor<4xf32>) {
  %0 = nt.slice %a {starts = array<i64: 2>, limits = array<i64: 6>, strides = array<i64: 1>} : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: error: slice [2:6:1] is out of range for a dim of size 4

// -----

func.func @gather_indices(%a: tensor<4xf32>, %i: tensor<2xf32>) {
  %0 = nt.gather %a, %i {axis = 0 : i64} : (tensor<4xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return
}
// CHECK: error: indices: expected integer elements, found f32

// -----

func.func @constant_count() {
  %0 = nt.constant [1.0, 2.0, 3.0] : tensor<2xf32>
  func.return
}
// CHECK: invalid.mlir:{{[0-9]+}}:20: error: expected 2 elements for tensor<2xf32>, found 3

// -----

func.func @use_before_def(%a: tensor<4xf32>) {
  %0 = nt.exp %1 : tensor<4xf32>
  %1 = nt.exp %a : tensor<4xf32>
  func.return
}
// CHECK: invalid.mlir:190:3: error: operand 0 is used before it is defined

// -----

func.func @unknown_op(%a: tensor<4xf32>) {
  %0 = nt.frobnicate %a : tensor<4xf32>
  func.return
}
// CHECK: error: Operation nt.frobnicate is not registered

// -----

func.func @unknown_type(%a: tensor<4xf31>) {
  func.return
}
// CHECK: invalid.mlir:206:38: error: unknown element type 'f31'

// -----

func.func @gather_elements_dims(%a: tensor<2x3xf32>, %i: tensor<2x4xi64>) {
  %0 = nt.gather_elements %a, %i {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xi64>) -> tensor<2x4xf32>
  func.return
}
// CHECK: error: indices: dims off axis 0 must not exceed the data's: 2x4 vs 2x3

// -----

func.func @group_norm_groups(%a: tensor<2x6x5xf32>, %c: tensor<6xf32>) {
  %0 = nt.group_norm %a, %c, %c {groups = 4 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x6x5xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<2x6x5xf32>
  func.return
}
// CHECK: error: groups must be >= 1 and divide the 6 channels, found 4

// -----

func.func @group_norm_scale(%a: tensor<2x6x5xf32>, %c: tensor<6xf32>, %s: tensor<3xf32>) {
  %0 = nt.group_norm %a, %s, %c {groups = 3 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x6x5xf32>, tensor<3xf32>, tensor<6xf32>) -> tensor<2x6x5xf32>
  func.return
}
// CHECK: error: scale: expected shape 6 (the channels), found 3

// -----

func.func @group_norm_rank(%a: tensor<2x6xf32>, %c: tensor<6xf32>) {
  %0 = nt.group_norm %a, %c, %c {groups = 3 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<2x6xf32>
  func.return
}
// CHECK: error: input: expected rank >= 3 (N x C x spatial), found rank 2

// -----

func.func @scale_not_power_of_two(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 3.0>} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: error: scale: expected finite positive powers of two, found 3.0

// -----

func.func @scale_not_finite(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 1.0e39>} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: invalid.mlir:254:52: error: a value out of range for its type (array<f32: ...> holds finite f32 values only)

// -----

func.func @scale_negative(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: -2.0>} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: error: scale: expected finite positive powers of two, found -2.0

// -----

func.func @scale_per_channel_shape(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 1.0, 2.0>, axis = 1 : i64} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: error: scale: expected 3 values (dim 1), found 2

// -----

func.func @scale_needs_axis(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 1.0, 2.0>} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: error: scale: 2 values need an axis (one value without)

// -----

func.func @scale_axis_range(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 1.0>, axis = 2 : i64} : tensor<2x3xf32> to tensor<2x3xf8E4M3>
  func.return
}
// CHECK: error: axis 2 is out of range for rank 2

// -----

func.func @scaled_cast_to_bf16(%a: tensor<2x3xf32>) {
  %0 = nt.scaled_cast %a {scale = array<f32: 2.0>} : tensor<2x3xf32> to tensor<2x3xbf16>
  func.return
}
// CHECK: error: expected an f8E4M3 result, found bf16

// -----

func.func @unscale_count(%a: tensor<4x8xf8E4M3>, %b: tensor<8x16xf8E4M3>) {
  %0 = nt.matmul %a, %b {unscale = array<f32: 1.0, 0.5>} : (tensor<4x8xf8E4M3>, tensor<8x16xf8E4M3>) -> tensor<4x16xf32>
  func.return
}
// CHECK: error: unscale: expected 1 or 16 values (one per output channel), found 2

// -----

func.func @unscale_power_of_two(%a: tensor<4x8xf8E4M3>, %b: tensor<8x16xf8E4M3>) {
  %0 = nt.matmul %a, %b {unscale = array<f32: 0.3>} : (tensor<4x8xf8E4M3>, tensor<8x16xf8E4M3>) -> tensor<4x16xf32>
  func.return
}
// CHECK: error: unscale: expected finite positive powers of two, found 0.30000001192092896

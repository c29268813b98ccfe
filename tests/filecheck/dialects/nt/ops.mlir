// RUN: neuron-opt %s --split-input-file | filecheck %s
// RUN: NEURON_ROUNDTRIP | filecheck %s

// Every nt op round-trips in custom and generic form.

// CHECK-LABEL: func.func @contractions
func.func @contractions(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %c: tensor<2x4x8xbf16>, %d: tensor<8x16xbf16>, %x: tensor<1x4x9x9xf32>, %w: tensor<6x2x3x3xf32>, %bias: tensor<6xf32>, %wt: tensor<16x8xf32>) {
  // CHECK-NEXT: nt.matmul %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %0 = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  // CHECK-NEXT: nt.batch_matmul %{{.*}}, %{{.*}} {acc = f32} : (tensor<2x4x8xbf16>, tensor<8x16xbf16>) -> tensor<2x4x16xf32>
  %1 = nt.batch_matmul %c, %d {acc = f32} : (tensor<2x4x8xbf16>, tensor<8x16xbf16>) -> tensor<2x4x16xf32>
  // CHECK-NEXT: nt.linear %{{.*}}, %{{.*}} {trans_b} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %2 = nt.linear %a, %wt {trans_b} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  // CHECK-NEXT: nt.conv %{{.*}}, %{{.*}}, %{{.*}} {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<1x6x5x5xf32>
  %3 = nt.conv %x, %w, %bias {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<1x6x5x5xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<4x8xf32>, %r: tensor<8xf32>, %i: tensor<4x8xi64>, %p: tensor<4x8xi1>) {
  // CHECK-NEXT: nt.add %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %0 = nt.add %a, %r : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: nt.sub %{{.*}}, %{{.*}} : tensor<4x8xf32>
  %1 = nt.sub %a, %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.mul
  %2 = nt.mul %a, %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.div %{{.*}}, %{{.*}} : tensor<4x8xi64>
  %3 = nt.div %i, %i : tensor<4x8xi64>
  // CHECK-NEXT: nt.mod %{{.*}}, %{{.*}} {fmod} : tensor<4x8xf32>
  %4 = nt.mod %a, %a {fmod} : tensor<4x8xf32>
  // CHECK-NEXT: nt.max
  %5 = nt.max %a, %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.min
  %6 = nt.min %a, %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.pow
  %7 = nt.pow %a, %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.cmp %{{.*}}, %{{.*}} {predicate = "lt"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xi1>
  %8 = nt.cmp %a, %a {predicate = "lt"} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xi1>
  // CHECK-NEXT: nt.and %{{.*}}, %{{.*}} : tensor<4x8xi1>
  %9 = nt.and %p, %8 : tensor<4x8xi1>
  // CHECK-NEXT: nt.or
  %10 = nt.or %p, %p : tensor<4x8xi1>
  // CHECK-NEXT: nt.xor
  %11 = nt.xor %p, %p : tensor<4x8xi1>
  // CHECK-NEXT: nt.not %{{.*}} : tensor<4x8xi1>
  %12 = nt.not %p : tensor<4x8xi1>
  // CHECK-NEXT: nt.where %{{.*}}, %{{.*}}, %{{.*}} : (tensor<4x8xi1>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %13 = nt.where %p, %a, %r : (tensor<4x8xi1>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK-NEXT: nt.neg
  %14 = nt.neg %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.abs
  %15 = nt.abs %i : tensor<4x8xi64>
  // CHECK-NEXT: nt.relu
  %16 = nt.relu %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.exp
  %17 = nt.exp %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.log
  %18 = nt.log %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.sqrt
  %19 = nt.sqrt %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.rsqrt
  %20 = nt.rsqrt %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.reciprocal
  %21 = nt.reciprocal %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.tanh
  %22 = nt.tanh %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.sigmoid
  %23 = nt.sigmoid %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.erf
  %24 = nt.erf %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.silu
  %25 = nt.silu %a : tensor<4x8xf32>
  // CHECK-NEXT: nt.gelu %{{.*}} {approximate = "tanh"} : tensor<4x8xf32>
  %26 = nt.gelu %a {approximate = "tanh"} : tensor<4x8xf32>
  // CHECK-NEXT: nt.clip %{{.*}} {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64} : tensor<4x8xf32>
  %27 = nt.clip %a {min = 0.0 : f64, max = 6.0 : f64} : tensor<4x8xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @reductions_and_norms
func.func @reductions_and_norms(%a: tensor<2x4x8xf32>, %s: tensor<8xf32>, %c: tensor<4xf32>, %b: tensor<8x4xf32>) {
  // CHECK-NEXT: nt.reduce_sum %{{.*}} {axes = array<i64: 1>, keepdims} : (tensor<2x4x8xf32>) -> tensor<2x1x8xf32>
  %0 = nt.reduce_sum %a {axes = array<i64: 1>, keepdims} : (tensor<2x4x8xf32>) -> tensor<2x1x8xf32>
  // CHECK-NEXT: nt.reduce_mean %{{.*}} {axes = array<i64: -1>} : (tensor<2x4x8xf32>) -> tensor<2x4xf32>
  %1 = nt.reduce_mean %a {axes = array<i64: -1>} : (tensor<2x4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: nt.reduce_max %{{.*}} : (tensor<2x4x8xf32>) -> tensor<f32>
  %2 = nt.reduce_max %a : (tensor<2x4x8xf32>) -> tensor<f32>
  // CHECK-NEXT: nt.softmax %{{.*}} {axis = -1 : i64} : tensor<2x4x8xf32>
  %3 = nt.softmax %a {axis = -1 : i64} : tensor<2x4x8xf32>
  // CHECK-NEXT: nt.log_softmax
  %4 = nt.log_softmax %a {axis = 2 : i64} : tensor<2x4x8xf32>
  // CHECK-NEXT: nt.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 1.000000e-05 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %5 = nt.layer_norm %a, %s, %s {axis = 2 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  // CHECK-NEXT: nt.rms_norm
  %6 = nt.rms_norm %a, %s {axis = -1 : i64, epsilon = 1.0e-06 : f64} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  // CHECK-NEXT: nt.batch_norm %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64}
  %7 = nt.batch_norm %a, %c, %c, %c, %c {epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x8xf32>
  // CHECK-NEXT: nt.group_norm %{{.*}}, %{{.*}}, %{{.*}} {groups = 2 : i64, epsilon = 1.000000e-05 : f64} : (tensor<2x4x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x8xf32>
  %8 = nt.group_norm %a, %c, %c {groups = 2 : i64, epsilon = 1.0e-05 : f64} : (tensor<2x4x8xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x8xf32>
  // batch_norm's layout is N x C x ...: a rank-2 input (no spatial dims) is valid.
  // CHECK-NEXT: nt.batch_norm %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64} : (tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  %9 = nt.batch_norm %b, %c, %c, %c, %c {epsilon = 1.0e-05 : f64} : (tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @movement
func.func @movement(%a: tensor<2x3x4xf32>, %i: tensor<5xi64>, %j: tensor<2x3x4xi64>, %k: tensor<2x1xi64>, %x: tensor<1x2x6x6xf32>) {
  // CHECK-NEXT: nt.transpose %{{.*}} {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %0 = nt.transpose %a {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  // CHECK-NEXT: nt.reshape %{{.*}} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %1 = nt.reshape %a : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  // CHECK-NEXT: nt.broadcast %{{.*}} : (tensor<2x3x4xf32>) -> tensor<5x2x3x4xf32>
  %2 = nt.broadcast %a : (tensor<2x3x4xf32>) -> tensor<5x2x3x4xf32>
  // CHECK-NEXT: nt.slice %{{.*}} {starts = array<i64: 0, 1, 3>, limits = array<i64: 2, 3, -1>, strides = array<i64: 1, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  %3 = nt.slice %a {starts = array<i64: 0, 1, 3>, limits = array<i64: 2, 3, -1>, strides = array<i64: 1, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  // CHECK-NEXT: nt.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %4 = nt.concat %a, %a {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  // CHECK-NEXT: nt.gather %{{.*}}, %{{.*}} {axis = 2 : i64} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x3x5xf32>
  %5 = nt.gather %a, %i {axis = 2 : i64} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x3x5xf32>
  // CHECK-NEXT: nt.gather_elements
  %6 = nt.gather_elements %a, %j {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xi64>) -> tensor<2x3x4xf32>
  // CHECK-NEXT: nt.gather_nd %{{.*}}, %{{.*}} : (tensor<2x3x4xf32>, tensor<2x1xi64>) -> tensor<2x3x4xf32>
  %7 = nt.gather_nd %a, %k : (tensor<2x3x4xf32>, tensor<2x1xi64>) -> tensor<2x3x4xf32>
  // CHECK-NEXT: nt.pad %{{.*}} {pads = array<i64: 0, 1, 0, 0, 1, 2>, mode = "constant", value = 5.000000e-01 : f64} : (tensor<2x3x4xf32>) -> tensor<2x5x6xf32>
  %8 = nt.pad %a {pads = array<i64: 0, 1, 0, 0, 1, 2>, mode = "constant", value = 0.5 : f64} : (tensor<2x3x4xf32>) -> tensor<2x5x6xf32>
  // CHECK-NEXT: nt.max_pool %{{.*}} {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %9 = nt.max_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  // CHECK-NEXT: nt.avg_pool %{{.*}} {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, count_include_pad} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %10 = nt.avg_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, count_include_pad} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  // CHECK-NEXT: nt.cast %{{.*}} {saturate} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  %11 = nt.cast %a {saturate} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  // CHECK-NEXT: nt.cast %{{.*}} : tensor<2x3x4xf32> to tensor<2x3x4xi64>
  %12 = nt.cast %a : tensor<2x3x4xf32> to tensor<2x3x4xi64>
  // CHECK-NEXT: nt.weight @encoder.layer.0.weight : tensor<4x4xbf16>
  %13 = nt.weight @encoder.layer.0.weight : tensor<4x4xbf16>
  // CHECK-NEXT: %[[S8:.*]] = nt.scaled_cast %{{.*}} {scale = array<f32: 2.560000e+02>} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  %14 = nt.scaled_cast %a {scale = array<f32: 256.0>} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  // CHECK-NEXT: nt.scaled_cast %{{.*}} {scale = array<f32: 1.250000e-01, 6.553600e+04, 2.000000e+00>, axis = 1 : i64} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  %15 = nt.scaled_cast %a {scale = array<f32: 0.125, 65536.0, 2.0>, axis = 1 : i64} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  // CHECK-NEXT: nt.cast
  %16 = nt.cast %a {saturate} : tensor<2x3x4xf32> to tensor<2x3x4xf8E4M3>
  // CHECK-NEXT: nt.transpose
  %17 = nt.transpose %16 {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf8E4M3>) -> tensor<2x4x3xf8E4M3>
  // CHECK-NEXT: nt.batch_matmul %[[S8]], %{{.*}} {acc = f32, unscale = array<f32: 0.0009765625>} : (tensor<2x3x4xf8E4M3>, tensor<2x4x3xf8E4M3>) -> tensor<2x3x3xf32>
  %18 = nt.batch_matmul %14, %17 {acc = f32, unscale = array<f32: 0.0009765625>} : (tensor<2x3x4xf8E4M3>, tensor<2x4x3xf8E4M3>) -> tensor<2x3x3xf32>
  func.return
}

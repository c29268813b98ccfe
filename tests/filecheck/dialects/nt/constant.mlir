// RUN: neuron-opt %s --split-input-file | filecheck %s
// RUN: NEURON_ROUNDTRIP | filecheck %s

// nt.constant keeps every float value exactly: +-0, subnormals, max, +-inf and NaN payloads
// (as hex bit patterns), in every float type.

// CHECK-LABEL: func.func @f32
// CHECK-NEXT: nt.constant [0.0, -0.0, 1.0e-45, 3.4028235e+38, inf, -inf, 0x7FC00000, 0xFFC00123] : tensor<8xf32>
func.func @f32() -> tensor<8xf32> {
  %c = nt.constant [0.0, -0.0, 1.401298464324817e-45, 3.4028234663852886e+38, inf, -inf, 0x7FC00000, 0xFFC00123] : tensor<8xf32>
  func.return %c : tensor<8xf32>
}

// -----

// CHECK-LABEL: func.func @bf16
// CHECK-NEXT: nt.constant [0.0, -0.0, 9.0e-41, 3.39e+38, inf, -inf, 0x7FC1, -inf] : tensor<8xbf16>
func.func @bf16() -> tensor<8xbf16> {
  // f32's lowest value rounds to -inf in bf16 (as masks do): it must print as such.
  %c = nt.constant [0.0, -0.0, 9.183549615799121e-41, 3.3895313892515355e+38, inf, -inf, 0x7FC1, -inf] : tensor<8xbf16>
  func.return %c : tensor<8xbf16>
}

// -----

// CHECK-LABEL: func.func @f16
// CHECK-NEXT: nt.constant [0.0, -0.0, 6.0e-08, 65504.0, inf, -inf, 0x7E01, inf] : tensor<8xf16>
func.func @f16() -> tensor<8xf16> {
  // 1e5 is out of f16's range: RNE gives inf (xDSL's dense<> fails here).
  %c = nt.constant [0.0, -0.0, 5.960464477539063e-08, 65504.0, inf, -inf, 0x7E01, 100000.0] : tensor<8xf16>
  func.return %c : tensor<8xf16>
}

// -----

// CHECK-LABEL: func.func @fp8
// CHECK-NEXT: nt.constant [0.0, -0.0, 0.002, 240.0, inf, -inf, 0x7F, 0.062] : tensor<8xf8E4M3>
func.func @fp8() -> tensor<8xf8E4M3> {
  %c = nt.constant [0.0, -0.0, 0.001953125, 240.0, inf, -inf, 0x7F, 0.0625] : tensor<8xf8E4M3>
  func.return %c : tensor<8xf8E4M3>
}

// -----

// CHECK-LABEL: func.func @tf32
// CHECK-NEXT: nt.constant [0.0, -0.0, 1.0e-41, 3.401e+38, inf, -inf, 0x7FC00000, 0.1] : tensor<8xtf32>
func.func @tf32() -> tensor<8xtf32> {
  // 0.1 rounds to tf32's 10 mantissa bits; its smallest subnormal is 2^-136.
  %c = nt.constant [0.0, -0.0, 1.1479437019748901e-41, 3.4011621342146535e+38, inf, -inf, 0x7FC00000, 0.1] : tensor<8xtf32>
  func.return %c : tensor<8xtf32>
}

// -----

// CHECK-LABEL: func.func @splats_and_ints
// CHECK-NEXT: nt.constant 0.5 : tensor<64x64xf32>
// CHECK-NEXT: nt.constant [-9223372036854775808, 0, 9223372036854775807] : tensor<3xi64>
// CHECK-NEXT: nt.constant [true, false] : tensor<2xi1>
// CHECK-NEXT: nt.constant 7 : tensor<i32>
func.func @splats_and_ints() {
  %a = nt.constant 0.5 : tensor<64x64xf32>
  %b = nt.constant [-9223372036854775808, 0, 9223372036854775807] : tensor<3xi64>
  %c = nt.constant [true, false] : tensor<2xi1>
  %d = nt.constant [7] : tensor<i32>
  func.return
}

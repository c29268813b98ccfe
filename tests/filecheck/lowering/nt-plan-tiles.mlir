// RUN: neuron-opt %s --split-input-file -p nt-plan-tiles | filecheck %s

// Elementwise chains and matmul epilogues fuse into their consumer (one tile pass, no HBM
// round trip); a group holds at most one contraction or row-wise op, so the matmul feeding
// the layer_norm stays a group of its own, kept in SBUF (small, read only by tile groups).
// Returned values and values read by DMA-only ops (reshape) are never resident.
builtin.module {
  func.func @main(%x: tensor<8x64xf32>, %w: tensor<64x128xf32>, %s: tensor<128xf32>) -> (tensor<8x128xf32>, tensor<2x4x128xf32>) {
    %m = nt.matmul %x, %w : (tensor<8x64xf32>, tensor<64x128xf32>) -> tensor<8x128xf32>
    %a = nt.add %m, %s : (tensor<8x128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
    %n = nt.layer_norm %a, %s, %s {axis = 1 : i64, epsilon = 1.000000e-05 : f64} : (tensor<8x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
    %g = nt.gelu %n : tensor<8x128xf32>
    %c = nt.cast %g : tensor<8x128xf32> to tensor<8x128xbf16>
    %e = nt.cast %c : tensor<8x128xbf16> to tensor<8x128xf32>
    %r = nt.reshape %n : (tensor<8x128xf32>) -> tensor<2x4x128xf32>
    func.return %e, %r : tensor<8x128xf32>, tensor<2x4x128xf32>
  }
}

// CHECK:      func.func @main({{.*}} attributes {nisa.planned} {
// CHECK-NEXT:   %m = nt.matmul %x, %w {nisa.resident}
// CHECK-NEXT:   %a = nt.add %m, %s {nisa.fused}
// CHECK-NEXT:   %n = nt.layer_norm %a, %s, %s {axis = 1 : i64, epsilon = 1.000000e-05 : f64} :
// CHECK-NEXT:   %g = nt.gelu %n {nisa.fused}
// CHECK-NEXT:   %c = nt.cast %g {nisa.fused}
// CHECK-NEXT:   %e = nt.cast %c :
// CHECK-NEXT:   %r = nt.reshape %n :

// -----

// Resident tiles hold the [rows, last dim] view: a row-wise op over axis 0 is tiled in the
// transposed view, so its result goes to HBM even though only tile groups read it.
builtin.module {
  func.func @axis0(%x: tensor<2x8xf32>, %s: tensor<f32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
    %n = nt.rms_norm %x, %s {axis = 0 : i64, epsilon = 1.000000e-05 : f64} : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
    %e = nt.exp %n : tensor<2x8xf32>
    %t = nt.tanh %n : tensor<2x8xf32>
    func.return %e, %t : tensor<2x8xf32>, tensor<2x8xf32>
  }
}

// CHECK-LABEL: func.func @axis0(
// CHECK-NEXT:   %n = nt.rms_norm %x, %s {axis = 0 : i64, epsilon = 1.000000e-05 : f64} :
// CHECK-NEXT:   %e = nt.exp %n :
// CHECK-NEXT:   %t = nt.tanh %n :

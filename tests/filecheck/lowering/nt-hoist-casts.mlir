// RUN: neuron-opt %s --split-input-file -p nt-hoist-casts | filecheck %s

// A narrowing cast moves above the reshape and transpose that feed it, up to the gelu that
// computes their input (its only use): the copies then move fp8 and gelu's group clamps.
builtin.module {
  func.func @main(%x: tensor<8x4x16xf32>) -> tensor<32x16xf8E4M3> {
    %g = nt.gelu %x : tensor<8x4x16xf32>
    %t = nt.transpose %g {perm = array<i64: 1, 0, 2>} : (tensor<8x4x16xf32>) -> tensor<4x8x16xf32>
    %r = nt.reshape %t : (tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %y = nt.cast %r {saturate} : tensor<32x16xf32> to tensor<32x16xf8E4M3>
    func.return %y : tensor<32x16xf8E4M3>
  }
}

// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %g = nt.gelu %x : tensor<8x4x16xf32>
// CHECK-NEXT:    %{{.*}} = nt.cast %g {saturate} : tensor<8x4x16xf32> to tensor<8x4x16xf8E4M3>
// CHECK-NEXT:    %{{.*}} = nt.transpose %{{.*}} {perm = array<i64: 1, 0, 2>} : (tensor<8x4x16xf8E4M3>) -> tensor<4x8x16xf8E4M3>
// CHECK-NEXT:    %{{.*}} = nt.reshape %{{.*}} : (tensor<4x8x16xf8E4M3>) -> tensor<32x16xf8E4M3>
// CHECK-NEXT:    func.return

// -----

// Casts stay: a widening one (it would widen the copies), one whose chain reaches a value
// with another use, and one whose chain starts at an op no tile group computes (an argument).
builtin.module {
  func.func @stay(%x: tensor<4x8xbf16>, %y: tensor<4x8xf32>, %z: tensor<4x8xf32>) -> (tensor<32xf32>, tensor<32xbf16>, tensor<4x8xf32>, tensor<32xbf16>) {
    %a = nt.reshape %x : (tensor<4x8xbf16>) -> tensor<32xbf16>
    %b = nt.cast %a : tensor<32xbf16> to tensor<32xf32>
    %e = nt.exp %y : tensor<4x8xf32>
    %c = nt.reshape %e : (tensor<4x8xf32>) -> tensor<32xf32>
    %d = nt.cast %c : tensor<32xf32> to tensor<32xbf16>
    %f = nt.reshape %z : (tensor<4x8xf32>) -> tensor<32xf32>
    %g = nt.cast %f : tensor<32xf32> to tensor<32xbf16>
    func.return %b, %d, %e, %g : tensor<32xf32>, tensor<32xbf16>, tensor<4x8xf32>, tensor<32xbf16>
  }
}

// CHECK-LABEL: func.func @stay
// CHECK-NEXT:    %a = nt.reshape %x
// CHECK-NEXT:    %b = nt.cast %a
// CHECK-NEXT:    %e = nt.exp %y
// CHECK-NEXT:    %c = nt.reshape %e
// CHECK-NEXT:    %d = nt.cast %c
// CHECK-NEXT:    %f = nt.reshape %z
// CHECK-NEXT:    %g = nt.cast %f
// CHECK-NEXT:    func.return

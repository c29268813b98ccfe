// auto-cast with a plan of scaled fp8 (amax values): nt.scaled_cast operands (powers of two:
// 2^floor(log2(240 / amax))), the contraction's unscale = 1 / (s_in * s_w) per output
// channel; idempotent; canonicalize-casts leaves the scaled casts as they are.
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=bf16 plan="%S/Inputs/scaled-plan.toml"}' | filecheck %s
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=bf16 plan="%S/Inputs/scaled-plan.toml"},auto-cast{mode=matmult type=bf16 plan="%S/Inputs/scaled-plan.toml"},canonicalize-casts' | filecheck %s
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/scaled-plan.toml"},canonicalize-casts,preserve-io' | filecheck %s --check-prefix=ALL
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=bf16 plan="%S/Inputs/scaled-plan.toml"}' --cast-report 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT

// CHECK-LABEL: func.func @mm(%x: tensor<4x8xf32>) -> tensor<4x3xf32>
// CHECK-NEXT:    %[[X8:.*]] = nt.scaled_cast %x {scale = array<f32: 1.310720e+05>} : tensor<4x8xf32> to tensor<4x8xf8E4M3>
// CHECK-NEXT:    %w = nt.weight @w : tensor<8x3xf32>
// CHECK-NEXT:    %[[W8:.*]] = nt.scaled_cast %w {scale = array<f32: 1.280000e+02, 5.120000e+02, 6.400000e+01>, axis = 1 : i64} : tensor<8x3xf32> to tensor<8x3xf8E4M3>
// CHECK-NEXT:    %y = nt.matmul %[[X8]], %[[W8]] {unscale = array<f32: 5.96046448e-08, 1.49011612e-08, 1.1920929e-07>, acc = f32} : (tensor<4x8xf8E4M3>, tensor<8x3xf8E4M3>) -> tensor<4x3xf32>
// CHECK-NEXT:    %e = nt.exp %y : tensor<4x3xf32>
// CHECK-NEXT:    func.return %e : tensor<4x3xf32>

// ALL-LABEL: func.func @mm(%x: tensor<4x8xf32>) -> tensor<4x3xf32>
// ALL-NEXT:    %[[X8:.*]] = nt.scaled_cast %x {{.*}} : tensor<4x8xf32> to tensor<4x8xf8E4M3>
// ALL-NEXT:    %w = nt.weight @w : tensor<8x3xf32>
// ALL-NEXT:    %[[W8:.*]] = nt.scaled_cast %w {{.*}} : tensor<8x3xf32> to tensor<8x3xf8E4M3>
// ALL-NEXT:    %y = nt.matmul %[[X8]], %[[W8]] {{.*}} : (tensor<4x8xf8E4M3>, tensor<8x3xf8E4M3>) -> tensor<4x3xbf16>
// ALL-NEXT:    %e = nt.exp %y : tensor<4x3xbf16>
// ALL-NEXT:    %[[E32:.*]] = nt.cast %e : tensor<4x3xbf16> to tensor<4x3xf32>
// ALL-NEXT:    func.return %[[E32]] : tensor<4x3xf32>

// REPORT: auto-cast-scaled.mlir:{{[0-9]+}}:3: nt.matmul: cast to f8E4M3 scaled, result f32 (rule 1 at {{.*}}scaled-plan.toml:2)
func.func @mm(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %w = nt.weight @w : tensor<8x3xf32>
  %y = nt.matmul %x, %w : (tensor<4x8xf32>, tensor<8x3xf32>) -> tensor<4x3xf32>
  %e = nt.exp %y : tensor<4x3xf32>
  func.return %e : tensor<4x3xf32>
}

// RUN: neuron-opt %s -p 'auto-cast{mode=none}' | filecheck %s --check-prefix=NONE
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=bf16}' | filecheck %s --check-prefixes=MM,MM-BF16
// RUN: neuron-opt %s -p 'auto-cast{mode=matmul type=fp16}' | filecheck %s --check-prefixes=MM,MM-F16
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=tf32}' | filecheck %s --check-prefixes=MM,MM-TF32
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=fp8_e4m3}' | filecheck %s --check-prefixes=MM,MM-FP8
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16}' | filecheck %s --check-prefixes=ALL,ALL-BF16
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=fp16}' | filecheck %s --check-prefix=ALL-F16
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=tf32}' | filecheck %s --check-prefix=ALL-TF32
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=fp8_e4m3}' | filecheck %s --check-prefix=ALL-FP8
// Idempotent: a second run changes nothing.
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=fp16}' | neuron-opt -p 'auto-cast{mode=all type=fp16}' | filecheck %s --check-prefix=ALL-F16
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult type=bf16}' | neuron-opt -p 'auto-cast{mode=matmult type=bf16}' | filecheck %s --check-prefixes=MM,MM-BF16
// Report on stderr only.
// RUN: neuron-opt %s -p 'auto-cast{mode=matmult report=true}' 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT

// NONE:      func.func @block(%x: tensor<4x8xf32>, %idx: tensor<4xi64>) -> tensor<4x16xf32> {
// NONE-NEXT:   %w = nt.weight @w : tensor<8x16xf32>
// NONE-NEXT:   %b = nt.constant 0.1 : tensor<16xf32>
// NONE-NEXT:   %h = nt.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>

// MM-LABEL:  func.func @block(%x: tensor<4x8xf32>, %idx: tensor<4xi64>) -> tensor<4x16xf32>
// MM-BF16-SAME: attributes {nt.cast_type = bf16} {
// MM-FP8-SAME:  attributes {nt.cast_type = f8E4M3} {
// MM-BF16-NEXT: %[[X:.*]] = nt.cast %x : tensor<4x8xf32> to tensor<4x8xbf16>
// MM-BF16-NEXT: %w = nt.weight @w : tensor<8x16xf32>
// MM-BF16-NEXT: %[[W:.*]] = nt.cast %w : tensor<8x16xf32> to tensor<8x16xbf16>
// MM-BF16-NEXT: %b = nt.constant 0.1 : tensor<16xf32>
// MM-BF16-NEXT: %h = nt.linear %[[X]], %[[W]], %b {acc = f32} : (tensor<4x8xbf16>, tensor<8x16xbf16>, tensor<16xf32>) -> tensor<4x16xf32>
// MM-F16:       nt.linear %{{.*}}, %{{.*}}, %b {acc = f32} : (tensor<4x8xf16>, tensor<8x16xf16>, tensor<16xf32>) -> tensor<4x16xf32>
// MM-TF32:      nt.linear %{{.*}}, %{{.*}}, %b {acc = f32} : (tensor<4x8xtf32>, tensor<8x16xtf32>, tensor<16xf32>) -> tensor<4x16xf32>
// MM-FP8:       nt.cast %x {saturate} : tensor<4x8xf32> to tensor<4x8xf8E4M3>
// MM-FP8:       nt.linear %{{.*}}, %{{.*}}, %b {acc = f32} : (tensor<4x8xf8E4M3>, tensor<8x16xf8E4M3>, tensor<16xf32>) -> tensor<4x16xf32>
// Nothing but the contractions changes:
// MM:        %g = nt.gelu %h : tensor<4x16xf32>
// MM-NEXT:   %s = nt.softmax %g {axis = 1 : i64} : tensor<4x16xf32>
// MM-NEXT:   %r = nt.gather %s, %idx {axis = 0 : i64} : (tensor<4x16xf32>, tensor<4xi64>) -> tensor<4x16xf32>
// MM-NEXT:   %[[R:.*]] = nt.cast %r
// MM-NEXT:   %n = nt.add %idx, %idx : tensor<4xi64>
// MM-NEXT:   %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x16xf32>) -> tensor<16x4xf32>
// MM-NEXT:   %[[T:.*]] = nt.cast %t
// MM-NEXT:   %m = nt.batch_matmul %[[R]], %[[T]] {acc = f32}
// MM-SAME:   -> tensor<4x4xf32>
// MM-NEXT:   %y = nt.relu %h : tensor<4x16xf32>
// MM-NEXT:   func.return %y : tensor<4x16xf32>

// ALL:       func.func @block(%x: tensor<4x8xbf16>, %idx: tensor<4xi64>) -> tensor<4x16xbf16> attributes {nt.io_types = (tensor<4x8xf32>, tensor<4xi64>) -> tensor<4x16xf32>} {
// ALL-NEXT:    %w = nt.weight @w : tensor<8x16xbf16>
// ALL-NEXT:    %b = nt.constant 0.1 : tensor<16xbf16>
// ALL-NEXT:    %h = nt.linear %x, %w, %b {acc = f32} : (tensor<4x8xbf16>, tensor<8x16xbf16>, tensor<16xbf16>) -> tensor<4x16xbf16>
// ALL-NEXT:    %g = nt.gelu %h : tensor<4x16xbf16>
// ALL-NEXT:    %s = nt.softmax %g {axis = 1 : i64} : tensor<4x16xbf16>
// ALL-NEXT:    %r = nt.gather %s, %idx {axis = 0 : i64} : (tensor<4x16xbf16>, tensor<4xi64>) -> tensor<4x16xbf16>
// ALL-NEXT:    %n = nt.add %idx, %idx : tensor<4xi64>
// ALL-NEXT:    %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x16xbf16>) -> tensor<16x4xbf16>
// ALL-NEXT:    %m = nt.batch_matmul %r, %t {acc = f32} : (tensor<4x16xbf16>, tensor<16x4xbf16>) -> tensor<4x4xbf16>
// ALL-F16:     func.func @block(%x: tensor<4x8xf16>, %idx: tensor<4xi64>) -> tensor<4x16xf16>
// ALL-F16:     nt.constant 0.1 : tensor<16xf16>
// ALL-F16:     nt.softmax %g {axis = 1 : i64} : tensor<4x16xf16>
// ALL-TF32:    func.func @block(%x: tensor<4x8xtf32>, %idx: tensor<4xi64>) -> tensor<4x16xtf32>
// ALL-TF32:    nt.relu %h : tensor<4x16xtf32>
// fp8 is for contraction inputs only; everything else is bf16.
// ALL-FP8:     func.func @block(%x: tensor<4x8xbf16>, %idx: tensor<4xi64>) -> tensor<4x16xbf16>
// ALL-FP8:     nt.cast %x {saturate} : tensor<4x8xbf16> to tensor<4x8xf8E4M3>
// ALL-FP8:     nt.linear {{.*}} {acc = f32} : (tensor<4x8xf8E4M3>, tensor<8x16xf8E4M3>, tensor<16xbf16>) -> tensor<4x16xbf16>
// ALL-FP8:     nt.gelu %h : tensor<4x16xbf16>

// REPORT:      auto-cast.mlir:78:3: nt.weight: kept (matmult casts contractions only)
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.constant: kept (matmult casts contractions only)
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.linear: cast to bf16
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.gelu: kept (matmult casts contractions only)
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.softmax: kept
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.gather: kept
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.transpose: kept
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.batch_matmul: cast to bf16
// REPORT-NEXT: auto-cast.mlir:{{[0-9]+}}:3: nt.relu: kept
// REPORT-NEXT: auto-cast: 2 of 9 float ops converted, 4 casts inserted, 0 constants saturated
func.func @block(%x: tensor<4x8xf32>, %idx: tensor<4xi64>) -> tensor<4x16xf32> {
  %w = nt.weight @w : tensor<8x16xf32>
  %b = nt.constant 0.1 : tensor<16xf32>
  %h = nt.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %g = nt.gelu %h : tensor<4x16xf32>
  %s = nt.softmax %g {axis = 1 : i64} : tensor<4x16xf32>
  %r = nt.gather %s, %idx {axis = 0 : i64} : (tensor<4x16xf32>, tensor<4xi64>) -> tensor<4x16xf32>
  %n = nt.add %idx, %idx : tensor<4xi64>
  %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x16xf32>) -> tensor<16x4xf32>
  %m = nt.batch_matmul %r, %t : (tensor<4x16xf32>, tensor<16x4xf32>) -> tensor<4x4xf32>
  %y = nt.relu %h : tensor<4x16xf32>
  func.return %y : tensor<4x16xf32>
}

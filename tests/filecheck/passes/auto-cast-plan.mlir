// auto-cast with a precision plan (plan=FILE): rules by nt op and op class; fp32, fp16 and fp8
// in one graph under all-bf16; a rule matching nothing is a warning; a bad plan one error.
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/plan.toml"}' 2>/dev/null | filecheck %s
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/plan.toml"}' 2>&1 >/dev/null | filecheck %s --check-prefix=WARN
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/plan.toml"}' | neuron-opt -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/plan.toml"}' 2>/dev/null | filecheck %s
// RUN: not neuron-opt %s -p 'auto-cast{plan="%S/Inputs/bad-plan.toml"}' 2>&1 | filecheck %s --check-prefix=BAD
// RUN: neuron-opt %s -p 'auto-cast{mode=all type=bf16 plan="%S/Inputs/plan.toml"}' --cast-report 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT
// RUN: neuron-opt %s --auto-cast=all --auto-cast-type=bf16 --cast-report=%t.json >/dev/null
// RUN: filecheck %s --check-prefix=JSON --input-file %t.json

// CHECK-LABEL: func.func @block(%x: tensor<4x8xbf16>) -> tensor<4x4xbf16>
// CHECK-NEXT:    %w = nt.weight @w : tensor<8x16xbf16>
// CHECK-NEXT:    %h = nt.linear %x, %w {acc = f32} : (tensor<4x8xbf16>, tensor<8x16xbf16>) -> tensor<4x16xbf16>
// CHECK-NEXT:    %[[H16:.*]] = nt.cast %h : tensor<4x16xbf16> to tensor<4x16xf16>
// CHECK-NEXT:    %g = nt.gelu %[[H16]] : tensor<4x16xf16>
// CHECK-NEXT:    %[[G32:.*]] = nt.cast %g : tensor<4x16xf16> to tensor<4x16xf32>
// CHECK-NEXT:    %s = nt.softmax %[[G32]] {axis = 1 : i64} : tensor<4x16xf32>
// CHECK-NEXT:    %[[S8:.*]] = nt.cast %s {saturate} : tensor<4x16xf32> to tensor<4x16xf8E4M3>
// CHECK-NEXT:    %[[SB:.*]] = nt.cast %s : tensor<4x16xf32> to tensor<4x16xbf16>
// CHECK-NEXT:    %t = nt.transpose %[[SB]] {perm = array<i64: 1, 0>} : (tensor<4x16xbf16>) -> tensor<16x4xbf16>
// CHECK-NEXT:    %[[T8:.*]] = nt.cast %t {saturate} : tensor<16x4xbf16> to tensor<16x4xf8E4M3>
// CHECK-NEXT:    %m = nt.batch_matmul %[[S8]], %[[T8]] {acc = f32} : (tensor<4x16xf8E4M3>, tensor<16x4xf8E4M3>) -> tensor<4x4xbf16>
// CHECK-NEXT:    func.return %m : tensor<4x4xbf16>

// WARN: Inputs/plan.toml:18: warning: rule 4 'never matches' matches no op

// BAD: bad-plan.toml:3: error: rule 1: precision must be one of fp32, bf16, fp16, tf32, fp8_e4m3, keep, found 'fp64'

// REPORT:      plan.toml:18: warning: rule 4 'never matches' matches no op
// REPORT:      auto-cast-plan.mlir:{{[0-9]+}}:3: nt.gelu: cast to f16 (rule 2 'gelu in fp16' at {{.*}}plan.toml:7)
// REPORT-NEXT: auto-cast-plan.mlir:{{[0-9]+}}:3: nt.softmax: kept f32 (rule 1 'softmax fp32' at {{.*}}plan.toml:2)
// REPORT-NEXT: auto-cast-plan.mlir:{{[0-9]+}}:3: nt.transpose: cast to bf16 (all: data movement)
// REPORT-NEXT: auto-cast-plan.mlir:{{[0-9]+}}:3: nt.batch_matmul: cast to f8E4M3, result bf16 (rule 3 'matmul inputs fp8' at {{.*}}plan.toml:12)
// REPORT-NEXT: auto-cast: 5 of 6 float ops converted

// JSON:       "op": "nt.softmax",
// JSON-NEXT:  "where": "{{.*}}auto-cast-plan.mlir:{{[0-9]+}}:3",
// JSON-NEXT:  "decision": "bf16",
// JSON-NEXT:  "precision": "bf16",
// JSON-NEXT:  "converted": true,
// JSON-NEXT:  "reason": "all: computes in fp32 inside"
func.func @block(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  %w = nt.weight @w : tensor<8x16xf32>
  %h = nt.linear %x, %w : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %g = nt.gelu %h : tensor<4x16xf32>
  %s = nt.softmax %g {axis = 1 : i64} : tensor<4x16xf32>
  %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x16xf32>) -> tensor<16x4xf32>
  %m = nt.batch_matmul %s, %t : (tensor<4x16xf32>, tensor<16x4xf32>) -> tensor<4x4xf32>
  func.return %m : tensor<4x4xf32>
}

// RUN: neuron-opt %s --split-input-file -p preserve-io | filecheck %s
// RUN: neuron-opt %s --split-input-file -p 'preserve-io{enabled=false}' | filecheck %s --check-prefix=CASTIO
// Idempotent:
// RUN: neuron-opt %s --split-input-file -p preserve-io,preserve-io | filecheck %s

// The signature recorded by auto-cast{mode=all} comes back: one cast per argument at the top,
// one per result before the return; integer I/O is untouched; the attribute goes.
// CHECK-LABEL: func.func @restore(%x: tensor<4xf32>, %i: tensor<4xi64>, %h: tensor<4xf16>) -> (tensor<4xf32>, tensor<4xi64>, tensor<4xf32>) {
// CHECK-NEXT:    %[[X:.*]] = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    %[[H:.*]] = nt.cast %h : tensor<4xf16> to tensor<4xbf16>
// CHECK-NEXT:    %[[E:.*]] = nt.exp %[[X]] : tensor<4xbf16>
// CHECK-NEXT:    %[[S:.*]] = nt.add %[[E]], %[[H]] : tensor<4xbf16>
// CHECK-NEXT:    %[[R:.*]] = nt.cast %[[E]] : tensor<4xbf16> to tensor<4xf32>
// CHECK-NEXT:    %[[R2:.*]] = nt.cast %[[S]] : tensor<4xbf16> to tensor<4xf32>
// CHECK-NEXT:    func.return %[[R]], %i, %[[R2]] : tensor<4xf32>, tensor<4xi64>, tensor<4xf32>
// CHECK-NOT:     nt.io_types
// With --cast-io the low-precision signature stays.
// CASTIO-LABEL: func.func @restore(%x: tensor<4xbf16>, %i: tensor<4xi64>, %h: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xi64>, tensor<4xbf16>) {
// CASTIO-NOT:     nt.cast
// CASTIO-NOT:     nt.io_types
func.func @restore(%x: tensor<4xbf16>, %i: tensor<4xi64>, %h: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xi64>, tensor<4xbf16>) attributes {nt.io_types = (tensor<4xf32>, tensor<4xi64>, tensor<4xf16>) -> (tensor<4xf32>, tensor<4xi64>, tensor<4xf32>)} {
  %e = nt.exp %x : tensor<4xbf16>
  %s = nt.add %e, %h : tensor<4xbf16>
  func.return %e, %i, %s : tensor<4xbf16>, tensor<4xi64>, tensor<4xbf16>
}

// -----

// A result that is an exact cast of a value of the framework type returns that value: no
// lossy round trip, no cast pair left.
// CHECK-LABEL: func.func @merge(%x: tensor<4xf16>) -> tensor<4xf16> {
// CHECK-NEXT:    func.return %x : tensor<4xf16>
// CASTIO-LABEL: func.func @merge(%x: tensor<4xf16>) -> tensor<4xf32> {
func.func @merge(%x: tensor<4xf16>) -> tensor<4xf32> attributes {nt.io_types = (tensor<4xf16>) -> tensor<4xf16>} {
  %0 = nt.cast %x : tensor<4xf16> to tensor<4xf32>
  func.return %0 : tensor<4xf32>
}

// -----

// Without nt.io_types the function is left alone.
// CHECK-LABEL: func.func @alone(%x: tensor<4xbf16>) -> tensor<4xbf16> {
// CHECK-NEXT:    func.return %x
// --cast-io retypes an f32 argument whose every use is the same cast to T (matmult benefits).
// CASTIO-LABEL: func.func @alone
func.func @alone(%x: tensor<4xbf16>) -> tensor<4xbf16> {
  func.return %x : tensor<4xbf16>
}

// -----

// CHECK-LABEL: func.func @matmult_args(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>, %c: tensor<8x2xf32>) -> tensor<4x2xf32>
// CASTIO-LABEL: func.func @matmult_args(%a: tensor<4x8xbf16>, %b: tensor<8x2xf32>, %c: tensor<8x2xf32>) -> tensor<4x2xf32>
// CASTIO-NEXT:    %[[B:.*]] = nt.cast %b : tensor<8x2xf32> to tensor<8x2xbf16>
// CASTIO-NEXT:    %[[C:.*]] = nt.cast %c {saturate} : tensor<8x2xf32> to tensor<8x2xf8E4M3>
// CASTIO-NEXT:    %m = nt.matmul %a, %[[B]] {acc = f32}
func.func @matmult_args(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>, %c: tensor<8x2xf32>) -> tensor<4x2xf32> attributes {nt.cast_type = bf16} {
  %a1 = nt.cast %a : tensor<4x8xf32> to tensor<4x8xbf16>
  // %b has a use that is not a cast: it stays f32.
  %b1 = nt.cast %b : tensor<8x2xf32> to tensor<8x2xbf16>
  // %c is cast with saturation, which the runtime's RNE input rounding would not do.
  %c1 = nt.cast %c {saturate} : tensor<8x2xf32> to tensor<8x2xf8E4M3>
  %m = nt.matmul %a1, %b1 {acc = f32} : (tensor<4x8xbf16>, tensor<8x2xbf16>) -> tensor<4x2xf32>
  %n = nt.transpose %b {perm = array<i64: 1, 0>} : (tensor<8x2xf32>) -> tensor<2x8xf32>
  func.return %m : tensor<4x2xf32>
}

// -----

// Only the type auto-cast recorded is lowered: a user's own cast to f16 keeps an f32 input.
// CASTIO-LABEL: func.func @user_cast(%x: tensor<4xf32>) -> tensor<4xf16> {
// CASTIO-NEXT:    nt.cast %x : tensor<4xf32> to tensor<4xf16>
// CHECK-LABEL:  func.func @user_cast(%x: tensor<4xf32>) -> tensor<4xf16> {
func.func @user_cast(%x: tensor<4xf32>) -> tensor<4xf16> attributes {nt.cast_type = bf16} {
  %0 = nt.cast %x : tensor<4xf32> to tensor<4xf16>
  func.return %0 : tensor<4xf16>
}

// RUN: neuron-opt %s --split-input-file -p canonicalize-casts | filecheck %s
// Idempotent:
// RUN: neuron-opt %s --split-input-file -p canonicalize-casts,canonicalize-casts | filecheck %s

// R1: identity casts go.
// CHECK-LABEL: func.func @identity
// CHECK-NEXT:    func.return %x : tensor<4xbf16>
func.func @identity(%x: tensor<4xbf16>) -> tensor<4xbf16> {
  %0 = nt.cast %x : tensor<4xbf16> to tensor<4xbf16>
  func.return %0 : tensor<4xbf16>
}

// -----

// A saturating fp8 -> fp8 cast maps +-inf to +-240: not an identity.
// CHECK-LABEL: func.func @saturating_identity
// CHECK-NEXT:    %0 = nt.cast %x {saturate} : tensor<4xf8E4M3> to tensor<4xf8E4M3>
func.func @saturating_identity(%x: tensor<4xf8E4M3>) -> tensor<4xf8E4M3> {
  %0 = nt.cast %x {saturate} : tensor<4xf8E4M3> to tensor<4xf8E4M3>
  func.return %0 : tensor<4xf8E4M3>
}

// -----

// R2: trunc(ext(x)) = x, and an exact widening merges into the next cast.
// CHECK-LABEL: func.func @chains
// CHECK-NEXT:    %[[F16:.*]] = nt.cast %x : tensor<4xbf16> to tensor<4xf16>
// CHECK-NEXT:    func.return %x, %[[F16]] : tensor<4xbf16>, tensor<4xf16>
func.func @chains(%x: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xf16>) {
  %0 = nt.cast %x : tensor<4xbf16> to tensor<4xf32>
  %1 = nt.cast %0 : tensor<4xf32> to tensor<4xbf16>
  %2 = nt.cast %0 : tensor<4xf32> to tensor<4xf16>
  func.return %1, %2 : tensor<4xbf16>, tensor<4xf16>
}

// -----

// Forbidden: ext(trunc(x)) and double rounding stay.
// CHECK-LABEL: func.func @forbidden
// CHECK-NEXT:    %0 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    %1 = nt.cast %0 : tensor<4xbf16> to tensor<4xf32>
// CHECK-NEXT:    %2 = nt.cast %0 {saturate} : tensor<4xbf16> to tensor<4xf8E4M3>
// CHECK-NEXT:    func.return %1, %2
func.func @forbidden(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf8E4M3>) {
  %0 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
  %1 = nt.cast %0 : tensor<4xbf16> to tensor<4xf32>
  %2 = nt.cast %0 {saturate} : tensor<4xbf16> to tensor<4xf8E4M3>
  func.return %1, %2 : tensor<4xf32>, tensor<4xf8E4M3>
}

// -----

// R3: casts of constants fold with RNE (and saturation when the cast saturates).
// CHECK-LABEL: func.func @constants
// CHECK-NEXT:    %[[A:.*]] = nt.constant [0.1, inf, -0.0] : tensor<3xbf16>
// CHECK-NEXT:    %[[B:.*]] = nt.constant [240.0, 240.0, -240.0] : tensor<3xf8E4M3>
// CHECK-NEXT:    %[[C:.*]] = nt.constant [3, -3] : tensor<2xi32>
// CHECK-NEXT:    %[[D:.*]] = nt.cast %[[C]] : tensor<2xi32> to tensor<2xf32>
// CHECK-NEXT:    func.return %[[A]], %[[B]], %[[D]]
func.func @constants() -> (tensor<3xbf16>, tensor<3xf8E4M3>, tensor<2xf32>) {
  %c = nt.constant [0.1, 3.4028234663852886e+38, -0.0] : tensor<3xf32>
  %0 = nt.cast %c : tensor<3xf32> to tensor<3xbf16>
  %d = nt.constant [1000.0, inf, -300.0] : tensor<3xf32>
  %1 = nt.cast %d {saturate} : tensor<3xf32> to tensor<3xf8E4M3>
  // int -> float casts are never folded
  %i = nt.constant [3, -3] : tensor<2xi32>
  %2 = nt.cast %i : tensor<2xi32> to tensor<2xf32>
  func.return %0, %1, %2 : tensor<3xbf16>, tensor<3xf8E4M3>, tensor<2xf32>
}

// -----

// R4: a weight cast folds into a retyped weight when the weight has no other use, and for
// fp8 only when the cast saturates (loaders saturate fp8 weights).
// CHECK-LABEL: func.func @weights
// CHECK-NEXT:    %a = nt.weight @a : tensor<4xbf16>
// CHECK-NEXT:    %b = nt.weight @b : tensor<4xf32>
// CHECK-NEXT:    %[[B:.*]] = nt.cast %b : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    %c = nt.weight @c : tensor<4xf8E4M3>
// CHECK-NEXT:    %d = nt.weight @d : tensor<4xf32>
// CHECK-NEXT:    %[[D:.*]] = nt.cast %d : tensor<4xf32> to tensor<4xf8E4M3>
// CHECK-NEXT:    func.return %a, %[[B]], %b, %c, %[[D]]
func.func @weights() -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xf32>, tensor<4xf8E4M3>, tensor<4xf8E4M3>) {
  %a = nt.weight @a : tensor<4xf32>
  %0 = nt.cast %a : tensor<4xf32> to tensor<4xbf16>
  %b = nt.weight @b : tensor<4xf32>
  %1 = nt.cast %b : tensor<4xf32> to tensor<4xbf16>
  %c = nt.weight @c : tensor<4xf32>
  %2 = nt.cast %c {saturate} : tensor<4xf32> to tensor<4xf8E4M3>
  %d = nt.weight @d : tensor<4xf32>
  %3 = nt.cast %d : tensor<4xf32> to tensor<4xf8E4M3>
  func.return %0, %1, %b, %2, %3 : tensor<4xbf16>, tensor<4xbf16>, tensor<4xf32>, tensor<4xf8E4M3>, tensor<4xf8E4M3>
}

// -----

// R5: duplicate casts merge; dead casts go.
// CHECK-LABEL: func.func @cse
// CHECK-NEXT:    %[[C:.*]] = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    %[[S:.*]] = nt.add %[[C]], %[[C]] : tensor<4xbf16>
// CHECK-NEXT:    func.return %[[S]]
func.func @cse(%x: tensor<4xf32>) -> tensor<4xbf16> {
  %0 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
  %1 = nt.cast %x : tensor<4xf32> to tensor<4xbf16>
  %2 = nt.add %0, %1 : tensor<4xbf16>
  %3 = nt.cast %x : tensor<4xf32> to tensor<4xf16>
  func.return %2 : tensor<4xbf16>
}

// -----

// R6: a cast moves across a MOVE op when that lets two casts fold; the pair disappears.
// CHECK-LABEL: func.func @move_across
// CHECK-NEXT:    %[[T:.*]] = nt.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x4xbf16>) -> tensor<4x2xbf16>
// CHECK-NEXT:    %[[R:.*]] = nt.relu %[[T]] : tensor<4x2xbf16>
// CHECK-NEXT:    func.return %[[R]] : tensor<4x2xbf16>
func.func @move_across(%x: tensor<2x4xbf16>) -> tensor<4x2xbf16> {
  %0 = nt.cast %x : tensor<2x4xbf16> to tensor<2x4xf32>
  %1 = nt.transpose %0 {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %2 = nt.relu %1 : tensor<4x2xf32>
  %3 = nt.cast %2 : tensor<4x2xf32> to tensor<4x2xbf16>
  func.return %3 : tensor<4x2xbf16>
}

// -----

// ...but not across arithmetic (pushing a trunc into an add changes values), and not across a
// MOVE op whose result has other users.
// CHECK-LABEL: func.func @no_move
// CHECK-NEXT:    %0 = nt.cast %x : tensor<4xbf16> to tensor<4xf32>
// CHECK-NEXT:    %1 = nt.add %0, %0 : tensor<4xf32>
// CHECK-NEXT:    %2 = nt.cast %1 : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    %3 = nt.relu %0 : tensor<4xf32>
// CHECK-NEXT:    %4 = nt.cast %3 : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT:    func.return %2, %4, %3
func.func @no_move(%x: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xf32>) {
  %0 = nt.cast %x : tensor<4xbf16> to tensor<4xf32>
  %1 = nt.add %0, %0 : tensor<4xf32>
  %2 = nt.cast %1 : tensor<4xf32> to tensor<4xbf16>
  %3 = nt.relu %0 : tensor<4xf32>
  %4 = nt.cast %3 : tensor<4xf32> to tensor<4xbf16>
  func.return %2, %4, %3 : tensor<4xbf16>, tensor<4xbf16>, tensor<4xf32>
}

// -----

// A clip bound that is not exact in the narrow type blocks the move.
// CHECK-LABEL: func.func @clip_bound
// CHECK:         nt.clip %{{.*}} {min = 1.000000e-01 : f64} : tensor<4xf32>
func.func @clip_bound(%x: tensor<4xbf16>) -> tensor<4xf16> {
  %0 = nt.cast %x : tensor<4xbf16> to tensor<4xf32>
  %1 = nt.clip %0 {min = 0.1 : f64} : tensor<4xf32>
  %2 = nt.cast %1 : tensor<4xf32> to tensor<4xf16>
  func.return %2 : tensor<4xf16>
}

// -----

// A scaled cast is arithmetic: no cast moves across it or folds into it; the casts around it
// fold only with each other.
// CHECK-LABEL: func.func @scaled
// CHECK-NEXT:    %[[S:.*]] = nt.scaled_cast %x {scale = array<f32: 6.400000e+01>} : tensor<4xbf16> to tensor<4xf8E4M3>
// CHECK-NEXT:    %[[E:.*]] = nt.cast %[[S]] : tensor<4xf8E4M3> to tensor<4xf32>
// CHECK-NEXT:    %[[T:.*]] = nt.scaled_cast %[[E]] {scale = array<f32: 5.000000e-01>} : tensor<4xf32> to tensor<4xf8E4M3>
// CHECK-NEXT:    func.return %[[T]] : tensor<4xf8E4M3>
func.func @scaled(%x: tensor<4xbf16>) -> tensor<4xf8E4M3> {
  %0 = nt.scaled_cast %x {scale = array<f32: 64.0>} : tensor<4xbf16> to tensor<4xf8E4M3>
  %1 = nt.cast %0 : tensor<4xf8E4M3> to tensor<4xbf16>
  %2 = nt.cast %1 : tensor<4xbf16> to tensor<4xf32>
  %3 = nt.scaled_cast %2 {scale = array<f32: 0.5>} : tensor<4xf32> to tensor<4xf8E4M3>
  func.return %3 : tensor<4xf8E4M3>
}

// The pass-developer guide's example (examples/passes/fold_double_neg.py), run by name.
// RUN: neuron-opt %s --split-input-file -p example-fold-double-neg | filecheck %s
// RUN: neuron-opt %s --split-input-file -p 'example-fold-double-neg{only_float=true}' | filecheck %s --check-prefix=FLOAT

// CHECK-LABEL: func.func @twice
// CHECK-NEXT:    func.return %x : tensor<4xf32>
func.func @twice(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nt.neg %x : tensor<4xf32>
  %1 = nt.neg %0 : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// Four negations fold in one walk; three leave one.
// CHECK-LABEL: func.func @chains
// CHECK-NEXT:    %[[N:.*]] = nt.neg %x : tensor<4xbf16>
// CHECK-NEXT:    func.return %x, %[[N]] : tensor<4xbf16>, tensor<4xbf16>
func.func @chains(%x: tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>) {
  %0 = nt.neg %x : tensor<4xbf16>
  %1 = nt.neg %0 : tensor<4xbf16>
  %2 = nt.neg %1 : tensor<4xbf16>
  %3 = nt.neg %2 : tensor<4xbf16>
  %4 = nt.neg %x : tensor<4xbf16>
  %5 = nt.neg %4 : tensor<4xbf16>
  %6 = nt.neg %5 : tensor<4xbf16>
  func.return %3, %6 : tensor<4xbf16>, tensor<4xbf16>
}

// -----

// The inner neg stays while something else uses it.
// CHECK-LABEL: func.func @shared
// CHECK-NEXT:    %[[N:.*]] = nt.neg %x : tensor<4xf32>
// CHECK-NEXT:    %[[R:.*]] = nt.relu %[[N]] : tensor<4xf32>
// CHECK-NEXT:    func.return %x, %[[R]]
func.func @shared(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = nt.neg %x : tensor<4xf32>
  %1 = nt.neg %0 : tensor<4xf32>
  %2 = nt.relu %0 : tensor<4xf32>
  func.return %1, %2 : tensor<4xf32>, tensor<4xf32>
}

// -----

// Integers fold by default; {only_float=true} keeps them.
// CHECK-LABEL: func.func @ints
// CHECK-NEXT:    func.return %i : tensor<4xi32>
// FLOAT-LABEL: func.func @ints
// FLOAT-NEXT:    %{{.*}} = nt.neg %i : tensor<4xi32>
// FLOAT-NEXT:    %{{.*}} = nt.neg %{{.*}} : tensor<4xi32>
func.func @ints(%i: tensor<4xi32>) -> tensor<4xi32> {
  %0 = nt.neg %i : tensor<4xi32>
  %1 = nt.neg %0 : tensor<4xi32>
  func.return %1 : tensor<4xi32>
}

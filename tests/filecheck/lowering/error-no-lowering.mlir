// RUN: not neuron-opt %s -p lower-to-nisa 2>&1 | filecheck %s

// An op with no lowering is one error at its location, naming the op.
builtin.module {
  func.func @main(%x: tensor<4x8xf32>, %i: tensor<2xi64>) -> tensor<2x8xf32> {
    %y = nt.gather %x, %i {axis = 0 : i64} : (tensor<4x8xf32>, tensor<2xi64>) -> tensor<2x8xf32>
    func.return %y : tensor<2x8xf32>
  }
}
// CHECK: error-no-lowering.mlir:6:5: error: nt.gather: no lowering to nisa for this op
// CHECK-NOT: Traceback

// RUN: not neuron-opt %s -p lower-to-nisa 2>&1 | filecheck %s

// What the target cannot do is one error at its location, naming the op: here int64
// arithmetic on a value beyond the 32-bit integers of the NC-v2 engines.
builtin.module {
  func.func @main(%x: tensor<2x4xi64>) -> tensor<2x4xi64> {
    %c = nt.constant 1099511627776 : tensor<2x4xi64>
    %y = nt.add %x, %c : tensor<2x4xi64>
    func.return %y : tensor<2x4xi64>
  }
}
// CHECK: error-no-lowering.mlir:8:5: error: nt.add: an integer constant holding 1099511627776: constants are built by the engines, which compute integers in at most 32 bits
// CHECK-NOT: Traceback

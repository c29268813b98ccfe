// RUN: not neuron-opt %s -p lower-to-nisa 2>&1 | filecheck %s

// A row too wide for SBUF: the allocator's failure names the op.
builtin.module {
  func.func @main(%x: tensor<128x65536xf32>) -> tensor<128x65536xf32> {
    %y = nt.softmax %x {axis = 1 : i64} : tensor<128x65536xf32>
    func.return %y : tensor<128x65536xf32>
  }
}
// CHECK: error-does-not-fit.mlir:6:5: error: nt.softmax: does not fit on chip: a buffer of {{[0-9]+}} bytes per partition cannot be allocated
// CHECK-NOT: Traceback

// RUN: neuron-opt %s -p nt-plan-tiles | filecheck %s --check-prefix=PLAN
// RUN: neuron-opt %s -p lower-to-nisa | filecheck %s

// Layout propagation: h = bf16(relu(x @ w1)) (as auto-cast matmult writes it) only feeds the
// next matmul as its left operand, so it is computed transposed (h^T = w1^T x^T: stationary
// w1, moving x^T) and kept in SBUF; its tiles are then the second matmul's stationary operand
// as they are. The only TensorE transposes are x's (it arrives row-major from HBM); relu is
// applied by the eviction from PSUM (the f32 result), the cast on VectorE.
builtin.module {
  func.func @main(%x: tensor<128x256xbf16> {nt.name = "x"}, %w1: tensor<256x128xbf16> {nt.name = "w1"}, %w2: tensor<128x64xbf16> {nt.name = "w2"}) -> (tensor<128x64xf32> {nt.name = "y"}) {
    %h = nt.matmul %x, %w1 {acc = f32} : (tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<128x128xf32>
    %r = nt.relu %h : tensor<128x128xf32>
    %c = nt.cast %r : tensor<128x128xf32> to tensor<128x128xbf16>
    %y = nt.matmul %c, %w2 {acc = f32} : (tensor<128x128xbf16>, tensor<128x64xbf16>) -> tensor<128x64xf32>
    func.return %y : tensor<128x64xf32>
  }
}

// PLAN:      %h = nt.matmul %x, %w1 {acc = f32, nisa.fused}
// PLAN-NEXT: %r = nt.relu %h {nisa.fused}
// PLAN-NEXT: %c = nt.cast %r {nisa.resident, nisa.transposed}
// PLAN-NEXT: %y = nt.matmul %c, %w2 {acc = f32} :

// CHECK:      nisa.engine @tensor {
// CHECK-NEXT:   nisa.transpose @{{p[0-9]+}}[0:128, 0:128], @[[X:t[0-9]+]][0:128, 0:128]
// CHECK-NEXT:   nisa.transpose @{{p[0-9]+}}[0:128, 0:128], @[[X]][0:128, 128:256]
// h^T: stationary = a w1 tile [K, N], moving = x^T [K, M]
// CHECK-NEXT:   nisa.matmul @[[H:p[0-9]+]][0:128, 0:128], @{{t[0-9]+}}[0:128, 0:128], @{{t[0-9]+}}[0:128, 0:128] start
// CHECK-NEXT:   nisa.matmul @[[H]][0:128, 0:128], @{{t[0-9]+}}[0:128, 0:128], @{{t[0-9]+}}[0:128, 0:128] stop
// y: stationary = h^T as computed (no transpose in between)
// CHECK-NEXT:   nisa.matmul @{{p[0-9]+}}[0:128, 0:64], @[[HT:t[0-9]+]][0:128, 0:128], @{{t[0-9]+}}[0:128, 0:64] start stop
// CHECK-NEXT: }
// CHECK:      nisa.engine @scalar {
// CHECK:        nisa.activation @{{t[0-9]+}}[0:128, 0:128], @[[H]][0:128, 0:128] func relu

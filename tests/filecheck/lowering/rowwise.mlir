// RUN: neuron-opt %s --split-input-file -p lower-to-nisa | filecheck %s

// softmax over the free axis: row max (negated) on VectorE, exp with that bias and the row sum
// in one ScalarE pass, then one divide by the sum column; the input add is fused in (one load
// of x; the bias row copied to each of the 16 partitions by its own DMA, which keeps -0, where
// a TensorE ones matmul would give +0: no TensorE at all).
builtin.module {
  func.func @main(%x: tensor<16x64xf32> {nt.name = "x"}, %b: tensor<64xf32> {nt.name = "b"}) -> (tensor<16x64xf32> {nt.name = "y"}, tensor<16x64xf32> {nt.name = "z"}) {
    %s = nt.add %x, %b : (tensor<16x64xf32>, tensor<64xf32>) -> tensor<16x64xf32>
    %y = nt.softmax %s {axis = 1 : i64} : tensor<16x64xf32>
    %z = nt.layer_norm %x, %b, %b {axis = 1 : i64, epsilon = 1.000000e-05 : f64} : (tensor<16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<16x64xf32>
    func.return %y, %z : tensor<16x64xf32>, tensor<16x64xf32>
  }
}

// CHECK-NOT:  nisa.engine @tensor
// CHECK:      nisa.engine @vector {
// CHECK:        nisa.tensor_tensor @[[S:t[0-9]+]][0:16, 0:64], @{{t[0-9]+}}[0:16, 0:64], @[[BT:t[0-9]+]][0:16, 0:64] op add
// CHECK-NEXT:   nisa.tensor_reduce @[[M:t[0-9]+]][0:16, 0], @[[S]][0:16, 0:64] op max negate
// CHECK-NEXT:   nisa.tensor_scalar @{{t[0-9]+}}[0:16, 0:64], @[[E:t[0-9]+]][0:16, 0:64] op0 div operand0 @[[SUM:t[0-9]+]][0:16, 0]
// layer_norm: bn_stats / bn_aggr, then (x - mean) / sqrt(var + eps) in one tensor_scalar
// CHECK:        nisa.bn_stats @[[ST:t[0-9]+]][0:16, 0:3], @{{t[0-9]+}}[0:16, 0:64]
// CHECK-NEXT:   nisa.bn_aggr @[[MV:t[0-9]+]][0:16, 0:2], @[[ST]][0:16, 0:3]
// CHECK:        nisa.tensor_scalar @{{t[0-9]+}}[0:16, 0:64], @{{t[0-9]+}}[0:16, 0:64] op0 sub operand0 @[[MV]][0:16, 0] op1 div operand1 @{{t[0-9]+}}[0:16, 0]
// CHECK-NEXT:   nisa.tensor_tensor {{.*}} op mul
// CHECK-NEXT:   nisa.tensor_tensor {{.*}} op add
// CHECK:      nisa.engine @scalar {
// CHECK:        nisa.activation @[[E]][0:16, 0:64], @[[S]][0:16, 0:64] func exp bias @[[M]][0:16, 0] accumulate @[[SUM]][0:16, 0]
// CHECK:        nisa.activation @{{t[0-9]+}}[0:16, 0], @[[MV]][0:16, 1] func sqrt bias @{{t[0-9]+}}[0:16, 0]
// CHECK:      nisa.dma_queue
// CHECK-DAG:    nisa.dma_copy @[[BT]][0, 0:64], @b[0:64] signal
// CHECK-DAG:    nisa.dma_copy @[[BT]][15, 0:64], @b[0:64] signal

// -----

// group_norm with 2 groups of 2 channels: one (sample, group) row per partition (each row one
// DMA of its channels), bn_stats/bn_aggr, (x - mean) / sqrt(var + eps) in fp32 to an HBM
// scratch, then (sample, channel) rows take scale and bias as per-partition columns.
builtin.module {
  func.func @main(%x: tensor<2x4x3xf32> {nt.name = "x"}, %s: tensor<4xf32> {nt.name = "s"}) -> (tensor<2x4x3xf32> {nt.name = "y"}) {
    %y = nt.group_norm %x, %s, %s {groups = 2 : i64, epsilon = 1.000000e-05 : f64} : (tensor<2x4x3xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x3xf32>
    func.return %y : tensor<2x4x3xf32>
  }
}

// CHECK:      nisa.hbm scratch @[[Y:h[0-9]+]] : tensor<2x4x3xf32>
// CHECK:      nisa.engine @vector {
// CHECK-NEXT:   nisa.bn_stats @[[ST:t[0-9]+]][0:4, 0:3], @[[X:t[0-9]+]][0:4, 0:6]
// CHECK-NEXT:   nisa.bn_aggr @[[MV:t[0-9]+]][0:4, 0:2], @[[ST]][0:4, 0:3]
// CHECK:        nisa.tensor_scalar @[[N:t[0-9]+]][0:4, 0:6], @[[X]][0:4, 0:6] op0 sub operand0 @[[MV]][0:4, 0] op1 div operand1 @{{t[0-9]+}}[0:4, 0]
// CHECK-NEXT:   nisa.tensor_scalar @{{t[0-9]+}}[0:8, 0:3], @{{t[0-9]+}}[0:8, 0:3] op0 mul operand0 @[[SC:t[0-9]+]][0:8, 0] op1 add operand1 @{{t[0-9]+}}[0:8, 0]
// CHECK:        nisa.activation @{{t[0-9]+}}[0:4, 0], @[[MV]][0:4, 1] func sqrt
// CHECK:        nisa.dma_copy @[[X]][0, 0:6], @x[0, 0:2, 0:3]
// CHECK:        nisa.dma_copy @[[X]][3, 0:6], @x[1, 2:4, 0:3]
// CHECK:        nisa.dma_copy @[[Y]][1, 2:4, 0:3], @[[N]][3, 0:6]
// CHECK:        nisa.dma_copy @[[SC]][4:8, 0], @s[0:4]

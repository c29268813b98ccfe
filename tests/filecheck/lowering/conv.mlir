// RUN: neuron-opt %s -p lower-to-nisa | filecheck %s

// conv as a matmul: W [Cout, Cin*kh*kw] loaded as rows and transposed once on TensorE
// (stationary [K=18, Cout=4]); im2col patch rows [K, Ho, Wo] zeroed (the padding) and filled
// by one strided DMA per (ci, dy, dx) straight from the input in HBM; Cout on PSUM
// partitions matches NCHW rows; the bias column is fused into the ScalarE eviction.
builtin.module {
  func.func @main(%x: tensor<1x2x6x6xf32> {nt.name = "x"}, %w: tensor<4x2x3x3xf32> {nt.name = "w"}, %b: tensor<4xf32> {nt.name = "b"}) -> (tensor<1x4x3x3xf32> {nt.name = "y"}) {
    %y = nt.conv %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x3x3xf32>
    func.return %y : tensor<1x4x3x3xf32>
  }
}

// CHECK:      nisa.engine @tensor {
// CHECK-NEXT:   nisa.transpose @[[WT:p[0-9]+]][0:18, 0:4], @[[W:t[0-9]+]][0:4, 0:18]
// CHECK-NEXT:   nisa.matmul @[[ACC:p[0-9]+]][0:4, 0:9], @{{t[0-9]+}}[0:18, 0:4], @[[PATCH:t[0-9]+]][0:18, 0:3, 0:3] start stop
// CHECK-NEXT: }
// CHECK:      nisa.memset @[[PATCH]][0:18, 0:3, 0:3] value 0.0
// CHECK:      nisa.engine @scalar {
// CHECK-NEXT:   nisa.activation @{{t[0-9]+}}[0:4, 0:9], @[[ACC]][0:4, 0:9] func copy bias @{{t[0-9]+}}[0:4, 0]
// CHECK-DAG:  nisa.dma_copy @[[W]][0:4, 0:18], @w[0:4, 0:2, 0:3, 0:3]
// dy = dx = 0 with pad 1: output rows/cols 1..2 read input rows/cols 1, 3 (stride 2)
// CHECK-DAG:  nisa.dma_copy @[[PATCH]][0, 1:3, 1:3], @x[0, 0, 1:4:2, 1:4:2]
// dy = dx = 1: every output position, input 0, 2, 4
// CHECK-DAG:  nisa.dma_copy @[[PATCH]][4, 0:3, 0:3], @x[0, 0, 0:5:2, 0:5:2]
// CHECK-DAG:  nisa.dma_copy @y[0, 0:4, 0:3, 0:3], @{{t[0-9]+}}[0:4, 0:9]

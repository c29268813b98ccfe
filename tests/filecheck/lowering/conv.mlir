// RUN: neuron-opt %s --split-input-file -p lower-to-nisa | filecheck %s

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

// -----

// A cast feeding the conv (auto-cast matmult's bf16 input) is done by the im2col DMAs, which
// convert while they load (f32 in HBM -> bf16 patch tile): no cast pass over HBM. A
// saturating cast to fp8 is not what a DMA does, so it stays a group of its own.
builtin.module {
  func.func @main(%x: tensor<1x1x4x4xf32> {nt.name = "x"}, %w: tensor<2x1x1x1xbf16> {nt.name = "w"}, %w8: tensor<2x1x1x1xf8E4M3> {nt.name = "w8"}) -> (tensor<1x2x4x4xf32> {nt.name = "y"}, tensor<1x2x4x4xf32> {nt.name = "y8"}) {
    %c = nt.cast %x : tensor<1x1x4x4xf32> to tensor<1x1x4x4xbf16>
    %y = nt.conv %c, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, acc = f32} : (tensor<1x1x4x4xbf16>, tensor<2x1x1x1xbf16>) -> tensor<1x2x4x4xf32>
    %c8 = nt.cast %x {saturate} : tensor<1x1x4x4xf32> to tensor<1x1x4x4xf8E4M3>
    %y8 = nt.conv %c8, %w8 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, acc = f32} : (tensor<1x1x4x4xf8E4M3>, tensor<2x1x1x1xf8E4M3>) -> tensor<1x2x4x4xf32>
    func.return %y, %y8 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
  }
}

// CHECK-LABEL: // -----
// CHECK-DAG:   nisa.hbm input @x : tensor<1x1x4x4xf32>
// CHECK-DAG:   nisa.sbuf @[[P:t[0-9]+]] partitions 0:1 offset {{[0-9]+}} : tensor<1x4x4xbf16>
// CHECK-DAG:   nisa.hbm scratch @[[H8:h[0-9]+]] : tensor<1x1x4x4xf8E4M3>
// CHECK-DAG:   nisa.dma_copy @[[P]][0, 0:4, 0:4], @x[0, 0, 0:4, 0:4]
// CHECK-DAG:   nisa.dma_copy @{{t[0-9]+}}[0, 0:4, 0:4], @[[H8]][0, 0, 0:4, 0:4]

// RUN: neuron-opt %s --split-input-file -p lower-to-nisa | filecheck %s

// Few input channels (2): the K rows are ordered tap-major (tap, ci) and all 9 taps share one
// K tile of 18 rows (im2col). The weight rows are loaded tap-major [Cout, tap, Cin] (one DMA
// per tap) and transposed once on TensorE (stationary [K=18, Cout=4]); the patch tile
// [K, Ho, Wo] is zeroed (the padding) and filled by one strided DMA per tap straight from the
// input in HBM; Cout on PSUM partitions matches NCHW rows; the bias column is fused into the
// ScalarE eviction.
builtin.module {
  func.func @main(%x: tensor<1x2x6x6xf32> {nt.name = "x"}, %w: tensor<4x2x3x3xf32> {nt.name = "w"}, %b: tensor<4xf32> {nt.name = "b"}) -> (tensor<1x4x3x3xf32> {nt.name = "y"}) {
    %y = nt.conv %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x3x3xf32>
    func.return %y : tensor<1x4x3x3xf32>
  }
}

// CHECK:      nisa.engine @tensor {
// CHECK-NEXT:   nisa.transpose @[[WT:p[0-9]+]][0:18, 0:4], @[[W:t[0-9]+]][0:4, 0:9, 0:2]
// CHECK-NEXT:   nisa.matmul @[[ACC:p[0-9]+]][0:4, 0:9], @{{t[0-9]+}}[0:18, 0:4], @[[PATCH:t[0-9]+]][0:18, 0:3, 0:3] start stop
// CHECK-NEXT: }
// CHECK:      nisa.memset @[[PATCH]][0:18, 0:3, 0:3] value 0.0
// CHECK:      nisa.engine @scalar {
// CHECK-NEXT:   nisa.activation @{{t[0-9]+}}[0:4, 0:3, 0:3], @[[ACC]][0:4, 0:9] func copy bias @{{t[0-9]+}}[0:4, 0]
// CHECK-DAG:  nisa.dma_copy @[[W]][0:4, 0, 0:2], @w[0:4, 0:2, 0, 0]
// CHECK-DAG:  nisa.dma_copy @[[W]][0:4, 8, 0:2], @w[0:4, 0:2, 2, 2]
// tap (0, 0) with pad 1: output rows/cols 1..2 read input rows/cols 1, 3 (stride 2)
// CHECK-DAG:  nisa.dma_copy @[[PATCH]][0:2, 1:3, 1:3], @x[0, 0:2, 1:4:2, 1:4:2]
// tap (1, 1): every output position, input 0, 2, 4
// CHECK-DAG:  nisa.dma_copy @[[PATCH]][8:10, 0:3, 0:3], @x[0, 0:2, 0:5:2, 0:5:2]
// CHECK-DAG:  nisa.dma_copy @y[0, 0:4, 0:3, 0:3], @{{t[0-9]+}}[0:4, 0:3, 0:3]

// -----

// More input channels (40): one K tile per tap, whose moving operand is a strided view of
// the padded input band tile [Cin, rows, cols] (loaded by one DMA, pad strips memset): the
// 9 taps accumulate in one PSUM bank with no im2col copy.
builtin.module {
  func.func @main(%x: tensor<1x40x6x6xf32> {nt.name = "x"}, %w: tensor<8x40x3x3xf32> {nt.name = "w"}) -> (tensor<1x8x6x6xf32> {nt.name = "y"}) {
    %y = nt.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x40x6x6xf32>, tensor<8x40x3x3xf32>) -> tensor<1x8x6x6xf32>
    func.return %y : tensor<1x8x6x6xf32>
  }
}

// CHECK-LABEL: // -----
// CHECK:       nisa.sbuf @[[BAND:t[0-9]+]] partitions 0:40 offset {{[0-9]+}} : tensor<40x8x8xf32>
// CHECK:       nisa.engine @tensor {
// CHECK-COUNT-9: nisa.transpose @{{p[0-9]+}}[0:40, 0:8], @{{t[0-9]+}}[0:8, {{[0-8]}}, 0:40]
// CHECK-NEXT:  nisa.matmul @[[ACC:p[0-9]+]][0:8, 0:36], @{{t[0-9]+}}[0:40, 0:8], @[[BAND]][0:40, 0:6, 0:6] start
// CHECK-NEXT:  nisa.matmul @[[ACC]][0:8, 0:36], @{{t[0-9]+}}[0:40, 0:8], @[[BAND]][0:40, 0:6, 1:7]
// CHECK-COUNT-6: nisa.matmul @[[ACC]][0:8, 0:36]
// CHECK-NEXT:  nisa.matmul @[[ACC]][0:8, 0:36], @{{t[0-9]+}}[0:40, 0:8], @[[BAND]][0:40, 2:8, 2:8] stop
// CHECK:       nisa.memset @[[BAND]][0:40, 0, 0:8] value 0.0
// CHECK-NEXT:  nisa.memset @[[BAND]][0:40, 7, 0:8] value 0.0
// CHECK-NEXT:  nisa.memset @[[BAND]][0:40, 1:7, 0] value 0.0
// CHECK-NEXT:  nisa.memset @[[BAND]][0:40, 1:7, 7] value 0.0
// CHECK:       nisa.dma_copy @[[BAND]][0:40, 1:7, 1:7], @x[0, 0:40, 0:6, 0:6]

// -----

// Depthwise (groups = channels), bf16 (the cost model picks TensorE): per tap a diagonal
// stationary diag(w[:, tap]), the identity (GpSimd affine_select of ones on p == f) scaled by
// the tap's weight column (VectorE and ScalarE alternately); the taps accumulate in PSUM,
// each reading a strided view of the padded band tile.
builtin.module {
  func.func @main(%x: tensor<1x4x6x6xbf16> {nt.name = "x"}, %w: tensor<4x1x3x3xbf16> {nt.name = "w"}) -> (tensor<1x4x6x6xf32> {nt.name = "y"}) {
    %y = nt.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 4 : i64, acc = f32} : (tensor<1x4x6x6xbf16>, tensor<4x1x3x3xbf16>) -> tensor<1x4x6x6xf32>
    func.return %y : tensor<1x4x6x6xf32>
  }
}

// CHECK-LABEL: // -----
// CHECK:       nisa.engine @tensor {
// CHECK-NEXT:    nisa.matmul @[[ACC:p[0-9]+]][0:4, 0:36], @[[D0:t[0-9]+]][0:4, 0:4], @[[BAND:t[0-9]+]][0:4, 0:6, 0:6] start
// CHECK-COUNT-7: nisa.matmul @[[ACC]][0:4, 0:36]
// CHECK-NEXT:    nisa.matmul @[[ACC]][0:4, 0:36], @[[D8:t[0-9]+]][0:4, 0:4], @[[BAND]][0:4, 2:8, 2:8] stop
// CHECK:       nisa.engine @vector {
// CHECK-NEXT:    nisa.tensor_scalar @[[D0]][0:4, 0:4], @[[I:t[0-9]+]][0:4, 0:4] op0 mul operand0 @[[WCOL:t[0-9]+]][0:4, 0]
// CHECK:         nisa.tensor_scalar @[[D8]][0:4, 0:4], @[[I]][0:4, 0:4] op0 mul operand0 @[[WCOL]][0:4, 8]
// CHECK:       nisa.engine @scalar {
// CHECK-NEXT:    nisa.activation @{{t[0-9]+}}[0:4, 0:4], @[[I]][0:4, 0:4] func copy scale @[[WCOL]][0:4, 1]
// CHECK:       nisa.engine @gpsimd {
// CHECK-NEXT:    nisa.memset @[[ONES:t[0-9]+]][0:4, 0:4] value 1.0
// CHECK-NEXT:    nisa.affine_select @[[I]][0:4, 0:4], @[[ONES]][0:4, 0:4] base 0 channel -1 step 1 cmp eq fill 0.0
// CHECK:       nisa.dma_copy @[[WCOL]][0:4, 0:9], @w[0:4, 0, 0:3, 0:3]

// -----

// A cast feeding the conv (auto-cast matmult's bf16 input) is done by the loading DMAs, which
// convert while they load (f32 in HBM -> bf16 patch tile): no cast pass over HBM. A DMA
// does not saturate, so a saturating cast to fp8 is that DMA (overflow rounds to inf) and a
// clamp of the loaded tile to +-240 on VectorE.
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
// CHECK-DAG:   nisa.sbuf @[[P8:t[0-9]+]] partitions 0:1 offset {{[0-9]+}} : tensor<1x4x4xf8E4M3>
// CHECK-DAG:   nisa.dma_copy @[[P]][0, 0:4, 0:4], @x[0, 0, 0:4, 0:4]
// CHECK-DAG:   nisa.dma_copy @[[P8]][0, 0:4, 0:4], @x[0, 0, 0:4, 0:4]
// CHECK-DAG:   nisa.tensor_scalar @[[P8]][0, 0:4, 0:4], @[[P8]][0, 0:4, 0:4] op0 max operand0 -240.0 op1 min operand1 240.0

// -----

// Average pool whose windows are partial (count_include_pad unset): the window sums are
// divided by a count map (memsets of equal-count rectangles); the padding is memset strips
// around the input DMA'd into the band tile.
builtin.module {
  func.func @main(%x: tensor<1x2x5x5xf32> {nt.name = "x"}) -> (tensor<1x2x3x3xf32> {nt.name = "y"}) {
    %y = nt.avg_pool %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x5x5xf32>) -> tensor<1x2x3x3xf32>
    func.return %y : tensor<1x2x3x3xf32>
  }
}

// CHECK-LABEL: // -----
// CHECK:       nisa.engine @vector {
// CHECK-COUNT-4: nisa.memset @[[BAND:t[0-9]+]]
// CHECK-NEXT:  nisa.tensor_copy @[[SUM:t[0-9]+]][0:2, 0:3, 0:3], @[[BAND]][0:2, 0:5:2, 0:5:2]
// CHECK-COUNT-8: nisa.tensor_tensor @[[SUM]][0:2, 0:3, 0:3], @[[SUM]][0:2, 0:3, 0:3], @[[BAND]]{{.*}} op add
// CHECK-NEXT:  nisa.memset @[[CNT:t[0-9]+]][0:2, 0, 0] value 4.0
// CHECK-NEXT:  nisa.memset @[[CNT]][0:2, 0, 1] value 6.0
// CHECK:       nisa.memset @[[CNT]][0:2, 1, 1] value 9.0
// CHECK:       nisa.tensor_tensor @{{t[0-9]+}}[0:2, 0:3, 0:3], @[[SUM]][0:2, 0:3, 0:3], @[[CNT]][0:2, 0:3, 0:3] op div
// CHECK:       nisa.dma_copy @[[BAND]][0:2, 1:6, 1:6], @x[0, 0:2, 0:5, 0:5]

// -----

// Pad: the border slabs are filled from memset tiles (rows above and below, then the column
// to the right of the kept box), the kept box is one HBM -> HBM copy.
builtin.module {
  func.func @main(%x: tensor<1x2x3x3xf32> {nt.name = "x"}) -> (tensor<1x2x5x4xf32> {nt.name = "y"}) {
    %y = nt.pad %x {pads = array<i64: 0, 0, 1, 0, 0, 0, 1, 1>, mode = "constant", value = 0.5 : f64} : (tensor<1x2x3x3xf32>) -> tensor<1x2x5x4xf32>
    func.return %y : tensor<1x2x5x4xf32>
  }
}

// CHECK-LABEL: // -----
// CHECK:       nisa.memset @[[F0:t[0-9]+]][0, 0:8] value 0.5
// CHECK-DAG:   nisa.dma_copy @y[0, 0:2, 0, 0:4], @[[F0]][0, 0:8]
// CHECK-DAG:   nisa.dma_copy @y[0, 0:2, 4, 0:4], @{{t[0-9]+}}[0, 0:8]
// CHECK-DAG:   nisa.dma_copy @y[0, 0:2, 1:4, 3], @{{t[0-9]+}}[0, 0:6]
// CHECK-DAG:   nisa.dma_copy @y[0, 0:2, 1:4, 0:3], @x[0, 0:2, 0:3, 0:3]

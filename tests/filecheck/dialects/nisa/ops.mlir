// RUN: neuron-opt %s | filecheck %s
// RUN: NEURON_ROUNDTRIP | filecheck %s

// Every nisa declaration and instruction round-trips in custom and generic form.

builtin.module attributes {nt.weights = "w.npz"} {
  // CHECK-LABEL: nisa.kernel @every_instruction {
  nisa.kernel @every_instruction {
    // CHECK-NEXT: nisa.hbm input @x : tensor<256x512xf32>
    // CHECK-NEXT: nisa.hbm weight @w : tensor<128x128xbf16>
    // CHECK-NEXT: nisa.hbm output @y : tensor<128x512xbf16>
    // CHECK-NEXT: nisa.hbm scratch @spill : tensor<128x64xf32>
    // CHECK-NEXT: nisa.hbm weight @w8 {key = "w", scale = array<f32: 2.560000e+02>} : tensor<128x128xf8E4M3>
    // CHECK-NEXT: nisa.hbm weight @w8c {key = "w", scale = array<f32: 2.000000e+00, 4.000000e+00>, axis = 0 : i64} : tensor<2x64xf8E4M3>
    // CHECK-NEXT: nisa.hbm const @u {value = array<f32: 1.250000e-01, 5.000000e-01>} : tensor<2xf32>
    // CHECK-NEXT: nisa.sbuf @xs partitions 0:128 offset 0 : tensor<128x2x512xbf16>
    // CHECK-NEXT: nisa.sbuf @ws partitions 0:128 offset 2048 : tensor<128x128xbf16>
    // CHECK-NEXT: nisa.sbuf @col partitions 0:128 offset 2304 : tensor<128x4xf32>
    // CHECK-NEXT: nisa.sbuf @ys partitions 0:128 offset 4096 : tensor<128x512xbf16>
    // CHECK-NEXT: nisa.sbuf @mask partitions 0:32 offset 8192 : tensor<32x512xui8>
    // CHECK-NEXT: nisa.psum @acc partitions 0:128 offset 2048 : tensor<128x512xf32>
    // CHECK-NEXT: nisa.semaphore @loaded
    // CHECK-NEXT: nisa.semaphore @mm
    nisa.hbm input @x : tensor<256x512xf32>
    nisa.hbm weight @w : tensor<128x128xbf16>
    nisa.hbm output @y : tensor<128x512xbf16>
    nisa.hbm scratch @spill : tensor<128x64xf32>
    nisa.hbm weight @w8 {key = "w", scale = array<f32: 256.0>} : tensor<128x128xf8E4M3>
    nisa.hbm weight @w8c {key = "w", scale = array<f32: 2.0, 4.0>, axis = 0 : i64} : tensor<2x64xf8E4M3>
    nisa.hbm const @u {value = array<f32: 0.125, 0.5>} : tensor<2xf32>
    nisa.sbuf @xs partitions 0:128 offset 0 : tensor<128x2x512xbf16>
    nisa.sbuf @ws partitions 0:128 offset 2048 : tensor<128x128xbf16>
    nisa.sbuf @col partitions 0:128 offset 2304 : tensor<128x4xf32>
    nisa.sbuf @ys partitions 0:128 offset 4096 : tensor<128x512xbf16>
    nisa.sbuf @mask partitions 0:32 offset 8192 : tensor<32x512xui8>
    nisa.psum @acc partitions 0:128 offset 2048 : tensor<128x512xf32>
    nisa.semaphore @loaded
    nisa.semaphore @mm
    // CHECK:      nisa.dma_queue @qSyncIO0 {
    // CHECK-NEXT:   nisa.dma_copy @xs[0:128, 0, 0:512], @x[0:128, 0:512] signal(@loaded)
    // CHECK-NEXT:   nisa.dma_copy @xs[0:128, 1, 0:512], @x[128:256, 0:512] signal(@loaded)
    // CHECK-NEXT:   nisa.dma_copy @ws[0:128, 0:128], @w[0:128, 0:128] signal(@loaded)
    // CHECK-NEXT:   nisa.dma_copy @y[0:128, 0:512:2], @ys[0:128, 0:256] wait(@mm >= 2)
    // CHECK-NEXT: }
    nisa.dma_queue @qSyncIO0 {
      nisa.dma_copy @xs[0:128, 0, 0:512], @x[0:128, 0:512] signal(@loaded)
      nisa.dma_copy @xs[0:128, 1, 0:512], @x[128:256, 0:512] signal(@loaded)
      nisa.dma_copy @ws[0:128, 0:128], @w[0:128, 0:128] signal(@loaded)
      nisa.dma_copy @y[0:128, 0:512:2], @ys[0:128, 0:256] wait(@mm >= 2)
    }
    // CHECK:      nisa.engine @tensor {
    // CHECK-NEXT:   nisa.matmul @acc[0:128, 0:512], @ws[0:128, 0:128], @xs[0:128, 0, 0:512] start wait(@loaded >= 3)
    // CHECK-NEXT:   nisa.matmul @acc[0:128, 0:512], @ws[0:128, 0:128], @xs[0:128, 1, 0:512] stop signal(@mm)
    // CHECK-NEXT:   nisa.transpose @acc[0:128, 0:128], @ws[0:128, 0:128]
    // CHECK-NEXT: }
    nisa.engine @tensor {
      nisa.matmul @acc[0:128, 0:512], @ws[0:128, 0:128], @xs[0:128, 0, 0:512] start wait(@loaded >= 3)
      nisa.matmul @acc[0:128, 0:512], @ws[0:128, 0:128], @xs[0:128, 1, 0:512] stop signal(@mm)
      nisa.transpose @acc[0:128, 0:128], @ws[0:128, 0:128]
    }
    // CHECK:      nisa.engine @scalar {
    // CHECK-NEXT:   nisa.activation @ys[0:128, 0:512], @acc[0:128, 0:512] func gelu scale 0.5 bias @col[0:128, 0] accumulate @col[0:128, 1] wait(@mm >= 1)
    // CHECK-NEXT:   nisa.activation @ys[0:128, 0:512], @ys[0:128, 0:512] func exp scale @col[0:128, 2]
    // CHECK-NEXT:   nisa.tensor_scalar @ys[0:128, 0:512], @ys[0:128, 0:512] op0 mul operand0 -2.5e-05
    // CHECK-NEXT: }
    nisa.engine @scalar {
      nisa.activation @ys[0:128, 0:512], @acc[0:128, 0:512] func gelu scale 0.5 bias @col[0:128, 0] accumulate @col[0:128, 1] wait(@mm >= 1)
      nisa.activation @ys[0:128, 0:512], @ys[0:128, 0:512] func exp scale @col[0:128, 2]
      nisa.tensor_scalar @ys[0:128, 0:512], @ys[0:128, 0:512] op0 mul operand0 -2.5e-05
    }
    // CHECK:      nisa.engine @vector {
    // CHECK-NEXT:   nisa.tensor_tensor @ys[0:128, 0:512], @acc[0:128, 0:512], @ys[0:128, 0:512] op add signal(@mm)
    // CHECK-NEXT:   nisa.tensor_scalar @ys[0:128, 0:512], @ys[0:128, 0:512] op0 sub operand0 1.0 reverse0 op1 max operand1 @col[0:128, 3]
    // CHECK-NEXT:   nisa.tensor_reduce @col[0:128, 0:2], @xs[0:128, 0:2, 0:512] op max axes 1 negate
    // CHECK-NEXT:   nisa.tensor_copy @ys[0:128, 0:512], @xs[0:128, 0, 0:512]
    // CHECK-NEXT:   nisa.memset @col[0:128, 0:4] value 0.0
    // CHECK-NEXT:   nisa.bn_stats @col[0:128, 0:3], @xs[0:128, 0, 0:512]
    // CHECK-NEXT:   nisa.bn_aggr @col[0:128, 0:2], @col[0:128, 0:3]
    // CHECK-NEXT:   nisa.memset @col[0:128, 0:4] value -inf
    // CHECK-NEXT: }
    nisa.engine @vector {
      nisa.tensor_tensor @ys[0:128, 0:512], @acc[0:128, 0:512], @ys[0:128, 0:512] op add signal(@mm)
      nisa.tensor_scalar @ys[0:128, 0:512], @ys[0:128, 0:512] op0 sub operand0 1.0 reverse0 op1 max operand1 @col[0:128, 3]
      nisa.tensor_reduce @col[0:128, 0:2], @xs[0:128, 0:2, 0:512] op max axes 1 negate
      nisa.tensor_copy @ys[0:128, 0:512], @xs[0:128, 0, 0:512]
      nisa.memset @col[0:128, 0:4] value 0.0
      nisa.bn_stats @col[0:128, 0:3], @xs[0:128, 0, 0:512]
      nisa.bn_aggr @col[0:128, 0:2], @col[0:128, 0:3]
      nisa.memset @col[0:128, 0:4] value -inf
    }
    // CHECK:      nisa.engine @gpsimd {
    // CHECK-NEXT:   nisa.iota @mask[0:32, 0:512] base 3 channel 1 step -1
    // CHECK-NEXT:   nisa.select @ys[0:32, 0:512], @mask[0:32, 0:512], @ys[0:32, 0:512], -9984.0
    // CHECK-NEXT:   nisa.affine_select @ys[0:128, 0:512], @ys[0:128, 0:512] base 0 channel 1 step -1 cmp ge fill -9984.0
    // CHECK-NEXT:   nisa.tensor_copy @ys[32:64, 0:512], @ys[0:32, 0:512]
    // CHECK-NEXT: }
    nisa.engine @gpsimd {
      nisa.iota @mask[0:32, 0:512] base 3 channel 1 step -1
      nisa.select @ys[0:32, 0:512], @mask[0:32, 0:512], @ys[0:32, 0:512], -9984.0
      nisa.affine_select @ys[0:128, 0:512], @ys[0:128, 0:512] base 0 channel 1 step -1 cmp ge fill -9984.0
      nisa.tensor_copy @ys[32:64, 0:512], @ys[0:32, 0:512]
    }
  }
}

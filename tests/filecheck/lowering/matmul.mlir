// RUN: neuron-opt %s -p lower-to-nisa | filecheck %s

// A [8x256] @ B [256x64] in bf16: K on partitions in two 128-row tiles accumulated in one
// PSUM bank (start on the first, stop on the last); A^T comes from TensorE transposes, B is
// loaded as stored (no transpose); the result is evicted from PSUM and stored.
builtin.module {
  func.func @main(%a: tensor<8x256xbf16> {nt.name = "a"}, %b: tensor<256x64xbf16> {nt.name = "b"}) -> (tensor<8x64xf32> {nt.name = "c"}) {
    %c = nt.matmul %a, %b {acc = f32} : (tensor<8x256xbf16>, tensor<256x64xbf16>) -> tensor<8x64xf32>
    %g = nt.gelu %c : tensor<8x64xf32>
    func.return %g : tensor<8x64xf32>
  }
}

// CHECK:      nisa.kernel @main {
// CHECK-DAG:  nisa.hbm input @a : tensor<8x256xbf16>
// CHECK-DAG:  nisa.hbm input @b : tensor<256x64xbf16>
// CHECK-DAG:  nisa.hbm output @c : tensor<8x64xf32>
// CHECK:      nisa.engine @tensor {
// CHECK-NEXT:   nisa.transpose @[[P0:p[0-9]+]][0:128, 0:8], @[[A:t[0-9]+]][0:8, 0:128]
// CHECK-NEXT:   nisa.transpose @{{p[0-9]+}}[0:128, 0:8], @[[A]][0:8, 128:256]
// CHECK-NEXT:   nisa.matmul @[[ACC:p[0-9]+]][0:8, 0:64], @{{t[0-9]+}}[0:128, 0:8], @{{t[0-9]+}}[0:128, 0:64] start wait(
// CHECK-NEXT:   nisa.matmul @[[ACC]][0:8, 0:64], @{{t[0-9]+}}[0:128, 0:8], @{{t[0-9]+}}[0:128, 0:64] stop wait(
// CHECK-NEXT: }
// The gelu is fused into the eviction: ScalarE reads the accumulator in PSUM.
// CHECK:      nisa.engine @scalar {
// CHECK:        nisa.activation @[[OUT:t[0-9]+]][0:8, 0:64], @[[ACC]][0:8, 0:64] func gelu
// The store waits for ScalarE; it goes on a DMA queue of its own (no load queued behind it).
// CHECK:        nisa.dma_copy @c[0:8, 0:64], @[[OUT]][0:8, 0:64] wait(@s_scalar >= {{[0-9]+}}) signal(@s_q{{[0-9]+}})
// CHECK-NEXT: }

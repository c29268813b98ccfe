builtin.module {
  nisa.kernel @main {
    nisa.hbm input @x : tensor<2x4xf32>
    nisa.hbm output @y : tensor<2x4xf32>
    nisa.sbuf @t0 partitions 0:2 offset 0 : tensor<2x4xf32>
    nisa.sbuf @t1 partitions 0:2 offset 64 : tensor<2x4xf32>
    nisa.semaphore @s_vector
    nisa.semaphore @s_q0
    nisa.engine @vector {
      nisa.tensor_copy @t1[0:2, 0:4], @t0[0:2, 0:4] signal(@s_vector)
    }
    nisa.dma_queue @q0 {
      nisa.dma_copy @y[0:2, 0:4], @t1[0:2, 0:4] wait(@s_vector >= 1) signal(@s_q0)
    }
  }
}

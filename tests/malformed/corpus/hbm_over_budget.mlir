builtin.module {
  nisa.kernel @main {
    nisa.hbm input @x : tensor<65536x65536xf32>
    nisa.hbm output @y : tensor<2x4xf32>
    nisa.semaphore @s_q0
    nisa.dma_queue @q0 {
      nisa.dma_copy @y[0:2, 0:4], @x[0:2, 0:4] signal(@s_q0)
    }
  }
}

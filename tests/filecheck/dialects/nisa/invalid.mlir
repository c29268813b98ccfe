// RUN: neuron-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Every placement rule: the error names the stream, the instruction index and the operand.

nisa.kernel @k0 {
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x128xbf16>
    nisa.sbuf @b partitions 0:128 offset 256 : tensor<128x512xbf16>
    nisa.sbuf @o partitions 0:128 offset 2048 : tensor<128x512xf32>
    nisa.engine @tensor {
      nisa.matmul @o[0:128, 0:512], @a[0:128, 0:128], @b[0:128, 0:512] start stop
    }
}
// CHECK: error: tensor instruction 0 (nisa.matmul): operand dst: TensorE writes PSUM only, found SBUF

// -----

nisa.kernel @k1 {
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @b partitions 0:128 offset 0 : tensor<128x640xbf16>
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 0:512], @b[0:128, 0:128], @b[0:128, 0:640] start stop
    }
}
// CHECK: error: tensor instruction 0 (nisa.matmul): operand moving: free size 640 > 512

// -----

nisa.kernel @k2 {
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x1024xf32>
    nisa.sbuf @b partitions 0:128 offset 0 : tensor<128x640xbf16>
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 256:768], @b[0:128, 0:128], @b[0:128, 0:512] start stop
    }
}
// CHECK: error: tensor instruction 0 (nisa.matmul): operand dst: bytes 1024:3072 cross a PSUM bank boundary (banks are 2048 B)

// -----

nisa.kernel @k3 {
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @b partitions 0:128 offset 0 : tensor<128x640xbf16>
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 0:512], @b[0:128, 0:256], @b[0:128, 0:512] start
    }
}
// CHECK: error: tensor instruction 0 (nisa.matmul): operand stationary: free size 256 > 128

// -----

nisa.kernel @k4 {
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @gpsimd {
      nisa.tensor_copy @s[0:128, 0:512], @p[0:128, 0:512]
    }
}
// CHECK: error: gpsimd instruction 0 (nisa.tensor_copy): operand src: GpSimd accesses SBUF only, found PSUM

// -----

nisa.kernel @k5 {
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.tensor_copy @s[16:80, 0:512], @s[0:64, 0:512]
    }
}
// CHECK: error: vector instruction 0 (nisa.tensor_copy): operand dst: 64 partitions starting at 16: must start at partition 0 or 64

// -----

nisa.kernel @k6 {
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.tensor_copy @s[0:128, 0:513], @s[0:128, 0:512]
    }
}
// CHECK: error: vector instruction 0 (nisa.tensor_copy): operand dst: @s[0:128, 0:513] is out of bounds in dimension 1 (0:513 of 512)

// -----

nisa.kernel @k7 {
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @scalar {
      nisa.tensor_copy @s[0:128, 0:256], @s[0:128, 256:512]
    }
}
// CHECK: error: scalar instruction 0 (nisa.tensor_copy): nisa.tensor_copy cannot run on the scalar engine (it runs on: vector, gpsimd)

// -----

nisa.kernel @k8 {
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.dma_queue @q {
      nisa.dma_copy @s[0:128, 0:512], @p[0:128, 0:512]
    }
}
// CHECK: error: dma queue q instruction 0 (nisa.dma_copy): operand src: DMA cannot access PSUM

// -----

nisa.kernel @k9 {
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.tensor_copy @s[0:128, 0:256], @s[0:128, 256:512] wait(@nope >= 1)
    }
}
// CHECK: error: vector instruction 0 (nisa.tensor_copy): @nope is not a declared semaphore

// -----

nisa.kernel @k10 {
    nisa.sbuf @s partitions 0:128 offset 196000 : tensor<128x512xf32>
    nisa.engine @vector {
      nisa.memset @s[0:128, 0:512] value 0.0
    }
}
// CHECK: error: bytes 196000:198048 per partition exceed SBUF's 196608

// -----

nisa.kernel @k11 {
    nisa.sbuf @s partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.sbuf @c partitions 0:128 offset 4096 : tensor<128x2xf32>
    nisa.engine @scalar {
      nisa.activation @s[0:128, 0:512], @s[0:128, 0:512] func exp bias @c[0:128, 0:2]
    }
}
// CHECK: error: scalar instruction 0 (nisa.activation): operand bias: expected a [P, 1] column, found 2 per partition

// -----

nisa.kernel @k12 {
    nisa.sbuf @a partitions 0:128 offset 0 : tensor<128x128xf32>
    nisa.sbuf @b partitions 0:128 offset 512 : tensor<128x512xbf16>
    nisa.psum @p partitions 0:128 offset 0 : tensor<128x512xf32>
    nisa.engine @tensor {
      nisa.matmul @p[0:128, 0:512], @a[0:128, 0:128], @b[0:128, 0:512] start stop
    }
}
// CHECK: error: tensor instruction 0 (nisa.matmul): fp32/tf32 operands pair only with fp32/tf32 operands

// -----

nisa.kernel @scaled_bf16 {
    nisa.hbm weight @w {scale = array<f32: 2.0>} : tensor<4x4xbf16>
}
// CHECK: error: scale = array<f32: ...> is for f8E4M3 weights only

// -----

nisa.kernel @scale_power_of_two {
    nisa.hbm weight @w {scale = array<f32: 3.0>} : tensor<4x4xf8E4M3>
}
// CHECK: error: scale: expected finite positive powers of two, found 3.0

// -----

nisa.kernel @scale_count {
    nisa.hbm weight @w {scale = array<f32: 2.0, 4.0>, axis = 1 : i64} : tensor<4x4xf8E4M3>
}
// CHECK: error: scale: expected 4 values, found 2

// -----

nisa.kernel @const_count {
    nisa.hbm const @c {value = array<f32: 1.0, 2.0>} : tensor<3xf32>
}
// CHECK: error: a const needs value = array<...> with 3 values

// -----

// Generic form can put any attribute in wait and signal: refused, not a traceback.
nisa.kernel @bad_wait {
    nisa.hbm input @x : tensor<4x4xf32>
    nisa.sbuf @a partitions 0:4 offset 0 : tensor<4x4xf32>
    nisa.semaphore @s
    nisa.dma_queue @q {
      "nisa.dma_copy"() <{dst = #nisa.ap<@a[0:4, 0:4]>, src = #nisa.ap<@x[0:4, 0:4]>, wait = {s = "two"}}> : () -> ()
    }
}
// CHECK: error: nisa.dma_copy: wait on @s needs a whole count, found "two"

// -----

nisa.kernel @bad_signal {
    nisa.hbm input @x : tensor<4x4xf32>
    nisa.sbuf @a partitions 0:4 offset 0 : tensor<4x4xf32>
    nisa.semaphore @s
    nisa.dma_queue @q {
      "nisa.dma_copy"() <{dst = #nisa.ap<@a[0:4, 0:4]>, src = #nisa.ap<@x[0:4, 0:4]>, signal = [@s]}> : () -> ()
    }
}
// CHECK: error: nisa.dma_copy: signal takes semaphore names, found @s

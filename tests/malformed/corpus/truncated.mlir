func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %m = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<8x
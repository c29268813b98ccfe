func.func @main(%x: tensor<4x8xf32> {nt.name = "x"}, %w: tensor<8x8xf32>) -> (tensor<4x8xf32> {nt.name = "y"}) {
  %h = nt.matmul %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %s = nt.softmax %h {axis = 1 : i64} : tensor<4x8xf32>
  %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %u = nt.transpose %t {perm = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %y = nt.matmul %u, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

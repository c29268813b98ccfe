func.func @main(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = nt.softmax %a : tensor<4x8xf32>
  func.return %s : tensor<4x8xf32>
}

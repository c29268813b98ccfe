func.func @main(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = nt.softmax %a {axis = 5 : i64} : tensor<4x8xf32>
  func.return %s : tensor<4x8xf32>
}

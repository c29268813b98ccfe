func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  func.return %a : tensor<4xf32>
}
func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %e = nt.exp %a : tensor<4xf32>
  func.return %e : tensor<4xf32>
}

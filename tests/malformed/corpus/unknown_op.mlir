func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %e = nt.expp %a : tensor<4xf32>
  func.return %e : tensor<4xf32>
}

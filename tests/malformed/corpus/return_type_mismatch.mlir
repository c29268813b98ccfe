func.func @main(%a: tensor<4xf32>) -> tensor<4xbf16> {
  %e = nt.exp %a : tensor<4xf32>
  func.return %e : tensor<4xf32>
}

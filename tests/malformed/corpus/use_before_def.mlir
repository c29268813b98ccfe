func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %e = nt.exp %later : tensor<4xf32>
  %later = nt.neg %a : tensor<4xf32>
  func.return %e : tensor<4xf32>
}

func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %s = nt.add %a, %b : (tensor<4xf32>) -> tensor<4xf32>
  func.return %s : tensor<4xf32>
}

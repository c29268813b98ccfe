func.func @main(%a: tensor<4xf32>) -> (tensor<4xf32> {nt.name = "y"}, tensor<4xf32> {nt.name = "y"}) {
  %n = nt.neg %a : tensor<4xf32>
  func.return %a, %n : tensor<4xf32>, tensor<4xf32>
}

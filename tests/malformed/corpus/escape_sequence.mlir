func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %n = "nt.]0;pwned[31mneg"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  func.return %n : tensor<4xf32>
}

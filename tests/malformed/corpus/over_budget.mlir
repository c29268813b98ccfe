func.func @main(%a: tensor<1048576x1048576xf32>) -> tensor<1048576x1048576xf32> {
  %n = nt.neg %a : tensor<1048576x1048576xf32>
  func.return %n : tensor<1048576x1048576xf32>
}

func.func @main(%x: tensor<2x4xi64>) -> tensor<2x4xi64> {
  %c = nt.constant 1099511627776 : tensor<2x4xi64>
  %y = nt.add %x, %c : tensor<2x4xi64>
  func.return %y : tensor<2x4xi64>
}

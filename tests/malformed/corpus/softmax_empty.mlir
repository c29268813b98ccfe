func.func @main(%x: tensor<4x0xf32> {nt.name = "x"}) -> (tensor<4x0xf32> {nt.name = "y"}) {
  %y = nt.softmax %x {axis = 1 : i64} : tensor<4x0xf32>
  func.return %y : tensor<4x0xf32>
}

builtin.module attributes {nt.weights = "/etc/passwd"} {
  func.func @main(%x: tensor<2x4xf32> {nt.name = "x"}) -> (tensor<2x4xf32> {nt.name = "y"}) {
    %w = nt.weight @w : tensor<2x4xf32>
    %y = nt.add %x, %w : tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }
}

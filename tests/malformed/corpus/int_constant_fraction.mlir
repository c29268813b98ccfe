func.func @main() -> tensor<2xi32> {
  %c = nt.constant [1.5, 2.5] : tensor<2xi32>
  func.return %c : tensor<2xi32>
}

func.func @main() -> tensor<2xi32> {
  %c = nt.constant nan : tensor<2xi32>
  func.return %c : tensor<2xi32>
}

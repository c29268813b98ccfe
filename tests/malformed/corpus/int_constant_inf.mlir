func.func @main() -> tensor<2xi32> {
  %c = nt.constant [inf, 1.0] : tensor<2xi32>
  func.return %c : tensor<2xi32>
}

func.func @main() -> tensor<1000000x1000000xf32> {
  %c = nt.constant 0.0 : tensor<1000000x1000000xf32>
  func.return %c : tensor<1000000x1000000xf32>
}

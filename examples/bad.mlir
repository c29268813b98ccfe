// Deliberately wrong (the README's bad-input example): the matmul's contracting dims differ.
func.func @main(%a: tensor<4x8xf32>, %b: tensor<9x2xf32>) -> tensor<4x2xf32> {
  %c = nt.matmul %a, %b : (tensor<4x8xf32>, tensor<9x2xf32>) -> tensor<4x2xf32>
  func.return %c : tensor<4x2xf32>
}

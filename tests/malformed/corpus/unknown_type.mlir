func.func @main(%a: tensor<4xf33>) -> tensor<4xf33> {
  func.return %a : tensor<4xf33>
}

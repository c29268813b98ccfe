func.func @main(%a: tensor<-4x8xf32>) -> tensor<-4x8xf32> {
  func.return %a : tensor<-4x8xf32>
}

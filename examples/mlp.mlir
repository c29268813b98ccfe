builtin.module attributes {nt.weights = "mlp.npz", nt.weights_digest = "sha256:9698a1535deb79d505b1f17ada55bf82914227fd5789c0de578f42e3743b7d1a"} {
  func.func @main(%0: tensor<8x64xf32> {nt.name = "x"}) -> (tensor<8x10xf32> {nt.name = "logits"}) {
    %1 = nt.weight @fc1.weight : tensor<64x128xf32>
    %2 = nt.matmul %0, %1 : (tensor<8x64xf32>, tensor<64x128xf32>) -> tensor<8x128xf32>
    %3 = nt.constant 0.01 : tensor<128xf32>
    %4 = nt.add %2, %3 : (tensor<8x128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
    %5 = nt.weight @ln1.scale : tensor<128xf32>
    %6 = nt.weight @ln1.bias : tensor<128xf32>
    %7 = nt.layer_norm %4, %5, %6 {axis = 1 : i64, epsilon = 1.000000e-05 : f64} : (tensor<8x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
    %8 = nt.gelu %7 : tensor<8x128xf32>
    %9 = nt.weight @fc2.weight : tensor<128x10xf32>
    %10 = nt.matmul %8, %9 : (tensor<8x128xf32>, tensor<128x10xf32>) -> tensor<8x10xf32>
    %11 = nt.constant 0.01 : tensor<10xf32>
    %12 = nt.add %10, %11 : (tensor<8x10xf32>, tensor<10xf32>) -> tensor<8x10xf32>
    func.return %12 : tensor<8x10xf32>
  }
}

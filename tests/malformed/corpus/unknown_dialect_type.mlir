func.func @main(%a: !nt.tile<4>) -> !nt.tile<4> {
  func.return %a : !nt.tile<4>
}

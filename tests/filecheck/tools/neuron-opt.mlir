// The driver's shorthands expand to auto-cast{mode=M type=T},canonicalize-casts,preserve-io.
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=matmult --auto-cast-type=bf16 | filecheck %s --check-prefix=MM
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=matmul | filecheck %s --check-prefix=MM
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast-type=bf16 | filecheck %s --check-prefix=MM
// RUN: neuron-opt %S/Inputs/block.mlir -p 'auto-cast{mode=matmult type=bf16},canonicalize-casts,preserve-io' | filecheck %s --check-prefix=MM
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=all | filecheck %s --check-prefix=ALL
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=all --cast-io | filecheck %s --check-prefix=CASTIO
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=all --verify-each | filecheck %s --check-prefix=ALL
// --auto-cast=none prints exactly what no pass prints.
// RUN: neuron-opt %S/Inputs/block.mlir > %t.nopass
// RUN: neuron-opt %S/Inputs/block.mlir --auto-cast=none > %t.none
// RUN: diff %t.nopass %t.none
// stdin and -o
// RUN: cat %S/Inputs/block.mlir | neuron-opt --auto-cast=all -o %t.out
// RUN: filecheck %s --check-prefix=ALL --input-file=%t.out
// Errors: one line on stderr, exit 1.
// RUN: not neuron-opt %S/Inputs/block.mlir -p auto-cast --auto-cast=all 2>&1 | filecheck %s --check-prefix=COMBINE
// RUN: not neuron-opt %S/Inputs/block.mlir -p 'auto-cast{mode=fast}' 2>&1 | filecheck %s --check-prefix=BADMODE
// RUN: not neuron-opt %S/Inputs/block.mlir -p 'auto-cast{speed=1}' 2>&1 | filecheck %s --check-prefix=BADOPT
// RUN: not neuron-opt %S/Inputs/block.mlir -p 'auto-cast{mode=all' 2>&1 | filecheck %s --check-prefix=MALFORMED
// RUN: not neuron-opt %S/Inputs/block.mlir -p frobnicate 2>&1 | filecheck %s --check-prefix=BADPASS
// RUN: not neuron-opt %S/Inputs/block.mlir --auto-cast=fast 2>&1 | filecheck %s --check-prefix=BADFLAG
// RUN: not neuron-opt %S/Inputs/missing.mlir 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not neuron-opt %S/Inputs/block.mlir -o %t.nodir/out.mlir 2>&1 | filecheck %s --check-prefix=NODIR

// MM-LABEL: func.func @main(%x: tensor<4x8xf32> {nt.name = "x"}, %w: tensor<8x8xf32>) -> (tensor<4x8xf32> {nt.name = "y"}) {
// MM-NEXT:    %[[X:.*]] = nt.cast %x : tensor<4x8xf32> to tensor<4x8xbf16>
// MM-NEXT:    %[[W:.*]] = nt.cast %w : tensor<8x8xf32> to tensor<8x8xbf16>
// MM-NEXT:    %h = nt.matmul %[[X]], %[[W]] {acc = f32} : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xf32>
// MM-NEXT:    %s = nt.softmax %h {axis = 1 : i64} : tensor<4x8xf32>
// MM-NEXT:    %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
// MM-NEXT:    %u = nt.transpose %t {perm = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
// MM-NEXT:    %[[U:.*]] = nt.cast %u : tensor<4x8xf32> to tensor<4x8xbf16>
// MM-NEXT:    %y = nt.matmul %[[U]], %[[W]] {acc = f32} : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xf32>
// MM-NEXT:    func.return %y : tensor<4x8xf32>

// The signature is restored; every interior op reads and writes bf16; no cast pair is left.
// ALL-LABEL: func.func @main(%x: tensor<4x8xf32> {nt.name = "x"}, %w: tensor<8x8xf32>) -> (tensor<4x8xf32> {nt.name = "y"}) {
// ALL-NEXT:    %[[X:.*]] = nt.cast %x : tensor<4x8xf32> to tensor<4x8xbf16>
// ALL-NEXT:    %[[W:.*]] = nt.cast %w : tensor<8x8xf32> to tensor<8x8xbf16>
// ALL-NEXT:    %h = nt.matmul %[[X]], %[[W]] {acc = f32} : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
// ALL-NEXT:    %s = nt.softmax %h {axis = 1 : i64} : tensor<4x8xbf16>
// ALL-NEXT:    %t = nt.transpose %s {perm = array<i64: 1, 0>} : (tensor<4x8xbf16>) -> tensor<8x4xbf16>
// ALL-NEXT:    %u = nt.transpose %t {perm = array<i64: 1, 0>} : (tensor<8x4xbf16>) -> tensor<4x8xbf16>
// ALL-NEXT:    %y = nt.matmul %u, %[[W]] {acc = f32} : (tensor<4x8xbf16>, tensor<8x8xbf16>) -> tensor<4x8xbf16>
// ALL-NEXT:    %[[Y:.*]] = nt.cast %y : tensor<4x8xbf16> to tensor<4x8xf32>
// ALL-NEXT:    func.return %[[Y]] : tensor<4x8xf32>

// CASTIO-LABEL: func.func @main(%x: tensor<4x8xbf16> {nt.name = "x"}, %w: tensor<8x8xbf16>) -> (tensor<4x8xbf16> {nt.name = "y"}) {
// CASTIO-NOT:   nt.cast

// COMBINE:   neuron-opt: error: -p cannot be combined with --auto-cast, --auto-cast-type or --cast-io
// BADMODE:   neuron-opt: error: option mode of pass auto-cast must be one of none, matmult, matmul, all; found 'fast'
// BADOPT:    neuron-opt: error: unknown option 'speed' for pass auto-cast (options: mode, type, plan, op_block_list, node_block_list, report)
// MALFORMED: neuron-opt: error: malformed pass pipeline 'auto-cast{mode=all': Malformed pass arguments, expected either a space or `}` here
// BADPASS:   neuron-opt: error: unknown pass 'frobnicate' (available: {{.*}}auto-cast, canonicalize-casts{{.*}})
// BADFLAG:   neuron-opt: error: argument --auto-cast: invalid choice: 'fast'
// MISSING:   missing.mlir: error: No such file or directory
// NODIR:     out.mlir: error: cannot write: the directory does not exist
// Every error output is exactly one line (no traceback, no module dump).
// COMBINE-NOT: {{.}}

// RUN: neuron-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Syntax errors point at the offending token: a bad word at itself, a missing property at the
// op's name, a value missing at the end of the line just after the line's last token.

nisa.kernel @bad_word {
    nisa.engine @vector {
      nisa.tensor_tensor @s[0:1, 0:1], @s[0:1, 0:1], @s[0:1, 0:1] op plus
    }
}
// CHECK: invalid_syntax.mlir:8:70: error: nisa.tensor_tensor: 'op' expects one of add, sub, mul, div, mod, fmod, max, min, pow, eq, ne, ge, gt, le, lt, and, or, xor

// -----

nisa.kernel @missing_property {
    nisa.engine @vector {
      nisa.tensor_tensor @s[0:1, 0:1], @s[0:1, 0:1], @s[0:1, 0:1]
    }
}
// CHECK: invalid_syntax.mlir:17:7: error: nisa.tensor_tensor needs 'op'

// -----

nisa.kernel @missing_value {
    nisa.engine @gpsimd {
      nisa.iota @s[0:1, 0:1] base
    }
}
// CHECK: invalid_syntax.mlir:26:34: error: nisa.iota: 'base' expects an integer

func.func @main() { // café
}

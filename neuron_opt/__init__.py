"""neuron-opt: a mixed-precision compiler for AWS NeuronCore-v2, built on xDSL."""

__version__ = "0.1.0"

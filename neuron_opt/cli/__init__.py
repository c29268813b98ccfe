"""Command-line tools: neuron-opt (the pass driver) and neuron-cc (the model compiler)."""

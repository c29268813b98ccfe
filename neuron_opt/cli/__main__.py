"""`python -m neuron_opt.cli` runs neuron-opt (tests use it to avoid relying on PATH)."""

from neuron_opt.cli.neuron_opt import main

main()

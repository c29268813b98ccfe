"""Execution: the nt reference interpreter and the NeuronCore-v2 simulator."""

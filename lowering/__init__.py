"""Lowering from nt to the nisa instruction dialect."""

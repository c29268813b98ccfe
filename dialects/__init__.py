"""IR dialects: nt (tensor ops) and the shared dtype tables."""

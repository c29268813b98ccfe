"""The cast pipeline: auto-cast, canonicalize-casts, preserve-io, and the op policy."""

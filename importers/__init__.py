"""Importers from framework formats into the nt dialect."""

"""Data files (value-set mappings, layouts, labels, column maps), loaded by signer/.

A package only so that ``importlib.resources`` finds the files after install.
"""

"""Amaranth generators: gates -> adders/multipliers -> MAC -> PE -> array."""

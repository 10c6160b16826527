"""Simulation, verification and flows: reference models, cocotb benches, runners, CLI."""

"""Host-side drivers: write the design, build the operand streams, run the simulator, check the
results."""

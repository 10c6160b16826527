"""The native simulation path: operand streams played without Python per cycle.

:mod:`sim.native.stream` (the memory-file format), :mod:`sim.native.build` (the
Verilator C++ harness and the Icarus Verilog player, built once per design),
:mod:`sim.native.twin` (the proven behavioural twin) and :mod:`sim.native.run` (GEMMs
and split programs, checked like the cocotb path).
"""

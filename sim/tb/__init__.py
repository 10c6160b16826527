"""Code that runs inside the simulator: the cocotb benches of the MAC, the array and the split
array."""

"""Tool flows that measure generated HDL: Yosys (CMOS, breakdown), Liberty area and timing, iCE40,
formal equivalence, peers."""

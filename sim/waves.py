"""VCD dumps for :func:`sim.runner.run_cocotb` (``waves=``) on Icarus: an extra root
module that dumps every signal of the design, and vvp told to write plain VCD."""

__all__ = ["WAVES_MODULE", "WAVES_FILE", "waves_source", "dump_vcd"]


WAVES_MODULE = "systolic_waves_dump"
WAVES_FILE = "waves.vcd"
_WAVES_VERILOG = """// Written by sim.waves for run_cocotb(waves=...): dump every signal as VCD.
module {module};
    initial begin
        $dumpfile("{file}");
        $dumpvars(0, {toplevel});
    end
endmodule
"""


def waves_source(build_dir, toplevel):
    """The dump module (an extra Icarus root, ``-s``): VCD of ``toplevel`` into the run
    directory (the simulator's working directory)."""
    path = build_dir / f"{WAVES_MODULE}.v"
    text = _WAVES_VERILOG.format(module=WAVES_MODULE, file=WAVES_FILE, toplevel=toplevel)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def dump_vcd(runner):
    """cocotb's Icarus runner passes ``-none`` (no dump) or ``-fst`` to vvp; make it
    ``-vcd`` so the dump module writes plain VCD."""
    original = runner._test_command

    def _test_command():
        return [[("-vcd" if arg in ("-none", "-fst") else arg) for arg in cmd]
                for cmd in original()]

    runner._test_command = _test_command

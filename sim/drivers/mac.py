"""Run the cocotb MAC bench (:mod:`sim.tb.mac`) on one design and one simulator.

Sources go to ``build/sim/<toplevel>_src/``, the simulator build to
``build/sim/<toplevel>_<simulator>/``; both are reused while the design is unchanged.
"""
from sim.drivers.mac_suite import manifest_env, write_mac
from sim.runner import REPO_ROOT, run_cocotb

__all__ = ["BUILD_ROOT", "TEST_MODULE", "run_mac_design", "simulate_mac"]

BUILD_ROOT = REPO_ROOT / "build" / "sim"
TEST_MODULE = "sim.tb.mac"


def run_mac_design(design, simulator, *, build_root=BUILD_ROOT, spill=None, **kwargs):
    """``design`` is ``(sources, toplevel, manifest)`` from :func:`sim.drivers.mac_suite.write_mac`
    or :func:`~sim.drivers.mac_suite.write_mac_suite`; returns the runner's ``Outcome``."""
    sources, toplevel, manifest = design
    return run_cocotb(sources=sources, toplevel=toplevel, test_module=TEST_MODULE,
                      simulator=simulator, build_dir=build_root / f"{toplevel}_{simulator}",
                      extra_env=manifest_env(manifest, spill_dir=spill), **kwargs)


def simulate_mac(config, simulator, *, build_root=BUILD_ROOT):
    """All benches of :mod:`sim.tb.mac` on ``config`` as a standalone ``mac`` top."""
    design = write_mac(config, build_root / f"{config.slug}_src", name="mac")
    return run_mac_design(design, simulator, build_root=build_root / config.slug)

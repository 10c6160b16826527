"""``dask worker ... --preload sim.worker``: a Dask worker imports the generators, the
tool flows and the job functions of the sweep and the benches when it starts, instead
of in the first job it runs (a local pool's processes inherit them from the client)."""
import hdl.array            # noqa: F401  (imported for the side effect of loading)
import hdl.flows.fpga       # noqa: F401
import hdl.flows.liberty    # noqa: F401
import hdl.flows.synth      # noqa: F401
import hdl.split            # noqa: F401
import sim.drivers.schedule  # noqa: F401
import sim.execute          # noqa: F401
import sim.models.program   # noqa: F401
import sim.studies.split_area  # noqa: F401
import sim.studies.sweep    # noqa: F401

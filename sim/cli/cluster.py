"""``--scheduler ADDRESS``: where ``sweep``, ``report`` and ``bench`` run their jobs."""
import os

from sim.execute import SCHEDULER_ENV, ExecutorError, make_executor

__all__ = ["add_scheduler_option", "executor_for", "cluster_for", "ExecutorError"]


def add_scheduler_option(p):
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help=f"run the jobs on the Dask cluster whose scheduler listens at "
                        f"ADDRESS (e.g. tcp://10.0.0.5:8786; default ${SCHEDULER_ENV}, "
                        f"else a local process pool)")


def executor_for(args, *, workers=None, threads=False, environ=None):
    """The executor ``args.scheduler`` (else ``environ[DASK_SCHEDULER_ADDRESS]``) asks
    for; :class:`ExecutorError` (one line) if its scheduler does not answer."""
    environ = os.environ if environ is None else environ
    if workers is not None and (args.scheduler or environ.get(SCHEDULER_ENV)):
        raise ExecutorError("--jobs: only for the local pool; on a cluster the workers' "
                            "--nthreads set the parallelism (drop --jobs)")
    return make_executor(args.scheduler, workers=workers, threads=threads, environ=environ)


def cluster_for(args, *, environ=None):
    """The :class:`~sim.execute.DaskExecutor` asked for, or None (then each fan-out
    keeps its own local pool, as without this option)."""
    environ = os.environ if environ is None else environ
    if not (args.scheduler or environ.get(SCHEDULER_ENV)):
        return None
    return make_executor(args.scheduler, environ=environ)

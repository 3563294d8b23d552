import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("fourbit", deadline=None, max_examples=200, derandomize=True)
settings.load_profile("fourbit")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def seed():
    """Seed for random tests: SEED=... reproduces a failure; it is printed in failure messages."""
    return int(os.environ.get("SEED") or 20201206)


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


ALL_FLOAT16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)

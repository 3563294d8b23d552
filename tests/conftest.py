import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("fourbit", deadline=None, max_examples=200, derandomize=True)
settings.load_profile("fourbit")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    """A bad SEED stops the run with one line before any test (every seeded test would fail)."""
    from testbench.runner import resolve_seed
    try:
        resolve_seed(os.environ.get("SEED"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture
def seed():
    """Seed for random tests: SEED=... reproduces a failure; it is printed in failure messages."""
    from testbench.runner import resolve_seed
    return resolve_seed(os.environ.get("SEED"))


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.fixture
def usage_error(capsys):
    """``usage_error(main, argv)``: runs a command line's ``main`` that must stop with status 2 (bad
    arguments); returns what it wrote on stderr."""
    def run(main, argv):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        return capsys.readouterr().err
    return run


ALL_FLOAT16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)


@pytest.fixture
def no_committed_chip_record(monkeypatch, tmp_path):
    """Point synth.chip.RECORD (the committed chip report, read where a build has none) at nothing."""
    monkeypatch.setattr("synth.chip.RECORD", tmp_path / "no_chip_table.json")

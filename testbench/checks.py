"""What every cocotb bench shares: seed and parameters, bit-exact comparison, result records.

The runner passes the unit's parameters, the regression level (quick: ``make test``, full:
``make sim``, long: LONG=1) and the seed through the environment (FOURBIT_*); each
test appends one JSON line (vectors checked, mismatches, seconds, seed, first failure) to
FOURBIT_RESULTS, from which the runner writes build/sim/summary.json. Every test is written as
``@bench_test(SomeBench) async def name(bench, **params)``: :func:`bench_test` names the
:class:`BenchContext`, builds and starts the bench and records the result in a ``finally``.
"""

import functools
import json
import os
import time
import zlib

import cocotb
import numpy as np


class BenchContext:
    """Per-test state: a seeded numpy generator, the unit parameters and the tally of checks.

    Parameters
    ----------
    dut : cocotb handle
    test : str
        Test name; with the run's seed it fixes the test's random generator, so a test draws the
        same vectors whichever other tests run (``SEED=...`` reproduces any single test).
    """

    def __init__(self, dut, test):
        self.dut, self.test = dut, test
        self.unit = os.environ.get("FOURBIT_UNIT", "?")
        self.module = os.environ.get("FOURBIT_MODULE", "?")
        self.sim = os.environ.get("FOURBIT_SIM", cocotb.SIM_NAME)
        self.params = json.loads(os.environ.get("FOURBIT_PARAMS", "{}"))
        self.level = os.environ.get("FOURBIT_LEVEL", "quick")
        self.seed = int(os.environ.get("FOURBIT_SEED", cocotb.RANDOM_SEED))
        self.rng = np.random.default_rng([self.seed, zlib.crc32(test.encode())])
        self.vectors = 0
        self.mismatches = 0
        self.recorded = False
        self._started = time.perf_counter()

    def fail(self, message, mismatches=1):
        """Count ``mismatches``, record and raise an AssertionError: ``message`` prefixed with the
        module, simulator, test and seed, followed by the command line that reproduces it."""
        self.mismatches += mismatches
        text = (f"{self.module} on {self.sim}, test {self.test}, seed {self.seed}: {message}. Reproduce: "
                f"SEED={self.seed} python -m testbench --sim {self.sim} --unit {self.unit}{_LEVEL_FLAG[self.level]}")
        self.record(text)
        raise AssertionError(text)

    def expect(self, condition, message):
        """One checked vector: fails with ``message`` unless ``condition`` holds."""
        self.vectors += 1
        if not condition:
            self.fail(message)

    def compare(self, expected, actual, describe, valid=None):
        """Check ``actual`` against ``expected`` field by field (dicts of equally shaped arrays).

        ``describe(index)`` returns a text with the inputs behind the vector at ``index`` (a tuple
        into the arrays). ``valid`` optionally masks vectors that carry no check. On any mismatch
        the result is recorded and an AssertionError names the seed, the first differing vector
        (in order of the last axis, i.e. cycle or transfer), its inputs, expected and actual values.
        """
        names = list(expected)
        shape = np.shape(expected[names[0]])
        valid = np.ones(shape, bool) if valid is None else np.asarray(valid, bool)
        wrong = np.zeros(shape, bool)
        for name in names:
            wrong |= np.asarray(expected[name]) != np.asarray(actual[name])
        wrong &= valid
        checked, bad = int(valid.sum()), int(wrong.sum())
        self.vectors += checked
        if bad:
            flat = np.flatnonzero(np.moveaxis(wrong, -1, 0).ravel())[0]
            index = np.unravel_index(flat, np.moveaxis(wrong, -1, 0).shape)
            index = index[1:] + index[:1]
            where = ", ".join(f"{axis} {i}" for axis, i in zip(_axes(len(shape)), index))
            exp = " ".join(f"{name}={_scalar(expected[name][index])}" for name in names)
            act = " ".join(f"{name}={_scalar(actual[name][index])}" for name in names)
            self.fail(f"{bad} of {checked} vectors differ; first at {where}: expected {exp}, actual {act}; "
                      f"inputs: {describe(index)}", mismatches=bad)

    def record(self, failure=None):
        """Append this test's tally to the run's result file (the first call of a test counts)."""
        if self.recorded:
            return
        self.recorded = True
        path = os.environ.get("FOURBIT_RESULTS")
        seconds = time.perf_counter() - self._started
        line = {"test": self.test, "vectors": self.vectors, "mismatches": self.mismatches,
                "seconds": round(seconds, 4), "seed": self.seed, "failure": failure}
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(line) + "\n")
        self.dut._log.info("%s: %d vectors, %d mismatches, %.2f s (%.0f vectors/s)", self.test,
                           self.vectors, self.mismatches, seconds, self.vectors / max(seconds, 1e-9))


_LEVEL_FLAG = {"quick": " --quick", "full": "", "long": " --long"}


def bench_test(make_bench, *options, **test_options):
    """Decorator: ``async def body(bench, **params)`` becomes a cocotb test.

    The wrapper names the :class:`BenchContext` after the test and its parameters
    (``name[key=value,...]``), builds ``make_bench(dut, ctx)``, awaits its ``start()``, runs the
    body and records the result in a ``finally`` (with the exception as the failure, if any).
    ``options`` go to ``cocotb.parametrize`` (e.g. ``(("valid_rate", "ready_rate"), RATES)``),
    ``test_options`` to ``cocotb.test`` (e.g. ``skip``).
    """
    def decorate(body):
        @functools.wraps(body)
        async def test(dut, **params):
            suffix = ",".join(f"{key}={value}" for key, value in params.items())
            ctx = BenchContext(dut, body.__name__ + (f"[{suffix}]" if suffix else ""))
            failure = None
            try:
                bench = make_bench(dut, ctx)
                await bench.start()
                await body(bench, **params)
            except BaseException as error:
                failure = f"{type(error).__name__}: {error}"
                raise
            finally:
                ctx.record(failure)
        return cocotb.test(**test_options)(cocotb.parametrize(*options)(test) if options else test)
    return decorate


def _axes(ndim):
    return ("lane", "cycle") if ndim == 2 else ("transfer",)


def _scalar(value):
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, (bool, np.bool_)) else value

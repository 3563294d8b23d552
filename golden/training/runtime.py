"""The numeric runtime of a training process: one BLAS thread and a warmed-up BLAS."""

import numpy as np


def warm_up_blas():
    """Run one large float64 matmul, so that every epoch is timed in the same OpenBLAS state.

    Measured with this OpenBLAS (0.3.31, Haswell kernels): small float32 matmuls such as 64x256 @ 256x256
    take about 3.5x longer until the process has run one large enough GEMM (a 256x256 float64 one), so
    without this an epoch's time depends on what ran before it in the same process.
    """
    square = np.ones((256, 256))
    square @ square


def single_blas_thread(warm_up=True):
    """Limit BLAS to one thread (a multi-threaded float matmul may sum in another order, so runs
    would not be reproducible) and, with ``warm_up``, warm it up (see :func:`warm_up_blas`)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    if warm_up:
        warm_up_blas()

"""Datasets of the training table, all generated or bundled locally (no downloads).

- ``digits``: sklearn's 8x8 digits (1,797 images bundled with scikit-learn), pixels / 16, split 75/25
  stratified with random_state 0; inputs (N, 1, 8, 8).
- ``mnist1d``: ``mnist1d.data.make_dataset(get_dataset_args())`` (4,000 train / 1,000 test, generated from
  templates; ``get_dataset`` would download, so it is never called); inputs (N, 1, 1, 40). Generation
  takes seconds, so the arrays are cached in ``build/data/mnist1d.npz``.
"""

import os
import pathlib
import random
import zipfile
from typing import NamedTuple

import numpy as np

DATASETS = ("digits", "mnist1d")
CACHE_DIR = pathlib.Path(__file__).resolve().parents[2] / "build" / "data"


class DamagedCache(OSError):
    """A cached dataset file cannot be read; the message names the file and says to delete it."""


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray   #: float32 (N, C, H, W)
    y_train: np.ndarray   #: int64 labels
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_shape(self):
        return self.x_train.shape[1:]


def load(name, cache_dir=CACHE_DIR):
    """Load dataset ``name`` (one of :data:`DATASETS`)."""
    if name == "digits":
        return _digits()
    if name == "mnist1d":
        return _mnist1d(pathlib.Path(cache_dir))
    raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(x, bunch.target.astype(np.int64), test_size=0.25,
                                                        stratify=bunch.target, random_state=0)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10)


def _mnist1d(cache_dir):
    path = cache_dir / "mnist1d.npz"
    if not path.exists():
        arrays = _generate_mnist1d()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    try:
        with np.load(path) as f:
            x_train, y_train, x_test, y_test = (f[k] for k in ("x", "y", "x_test", "y_test"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        # numpy's own message (about pickles and allow_pickle) would mislead: the file is just broken.
        raise DamagedCache(f"the dataset cache {path} is damaged (not a readable mnist1d .npz archive: "
                           f"{type(error).__name__}); delete it and the next run regenerates it") from None
    shape = (-1, 1, 1, x_train.shape[-1])
    return Dataset("mnist1d", x_train.astype(np.float32).reshape(shape), y_train.astype(np.int64),
                   x_test.astype(np.float32).reshape(shape), y_test.astype(np.int64), 10)


def _generate_mnist1d():
    """Run mnist1d's generator offline; it reseeds the global RNGs, so their state is restored after."""
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}

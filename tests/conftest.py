"""Shared fixtures: the real MNIST, provisioned by data/prepare.py."""

import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # tests draw figures without a display

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.prepare import prepare  # noqa: E402
from utils import InMemoryMNIST  # noqa: E402

DATA_ROOT = ROOT / "data"


@pytest.fixture(scope="session")
def mnist_root():
    prepare(DATA_ROOT)  # only verifies when `make test` already provisioned it
    return DATA_ROOT


@pytest.fixture(scope="session")
def train_dataset(mnist_root):
    return InMemoryMNIST(str(mnist_root), train=True)


@pytest.fixture(scope="session")
def test_dataset(mnist_root):
    return InMemoryMNIST(str(mnist_root), train=False)

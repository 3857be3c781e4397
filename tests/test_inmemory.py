"""InMemoryMNIST against torchvision's MNIST with ToTensor, bit for bit."""

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

from utils import InMemoryMNIST


@pytest.fixture(scope="module")
def torchvision_train(mnist_root):
    return MNIST(str(mnist_root), train=True, download=True, transform=ToTensor())


@pytest.fixture(scope="module")
def torchvision_test(mnist_root):
    return MNIST(str(mnist_root), train=False, download=True, transform=ToTensor())


def assert_same_epoch(reference, candidate, batch_size, shuffle):
    """Iterate both loaders from the same seed; batches and draws must match."""
    torch.manual_seed(1)
    expected = list(DataLoader(reference, batch_size=batch_size, shuffle=shuffle))
    expected_state = torch.get_rng_state()

    torch.manual_seed(1)
    got = list(DataLoader(candidate, batch_size=batch_size, shuffle=shuffle))
    got_state = torch.get_rng_state()

    assert len(got) == len(expected)
    for index, ((x, y), (ex, ey)) in enumerate(zip(got, expected)):
        assert x.dtype == ex.dtype, f"batch {index}: images are {x.dtype}, expected {ex.dtype}"
        assert x.shape == ex.shape, f"batch {index}: images of shape {x.shape}, expected {ex.shape}"
        assert y.dtype == ey.dtype, f"batch {index}: labels are {y.dtype}, expected {ey.dtype}"
        assert y.shape == ey.shape, f"batch {index}: labels of shape {y.shape}, expected {ey.shape}"
        assert torch.equal(x, ex), f"batch {index}: images differ"
        assert torch.equal(y, ey), f"batch {index}: labels differ"
    assert torch.equal(got_state, expected_state), "different draws from the global generator"


def test_same_attributes(train_dataset, torchvision_train):
    assert torch.equal(train_dataset.data, torchvision_train.data)
    assert torch.equal(train_dataset.targets, torchvision_train.targets)
    assert train_dataset.classes == torchvision_train.classes
    assert len(train_dataset) == len(torchvision_train) == 60_000


@pytest.mark.parametrize("index", [0, 1, 59_999])
def test_same_item(train_dataset, torchvision_train, index):
    image, label = train_dataset[index]
    expected_image, expected_label = torchvision_train[index]
    assert type(label) is int
    assert label == expected_label
    assert image.dtype == expected_image.dtype
    assert torch.equal(image, expected_image)


@pytest.mark.parametrize("batch_size", [16, 32, 64])
def test_shuffled_epoch_identical(train_dataset, torchvision_train, batch_size):
    assert_same_epoch(torchvision_train, train_dataset, batch_size, shuffle=True)


def test_unshuffled_test_loader_identical(test_dataset, torchvision_test):
    assert_same_epoch(torchvision_test, test_dataset, 32, shuffle=False)


def test_rejects_invalid_device(mnist_root):
    with pytest.raises(RuntimeError):
        InMemoryMNIST(str(mnist_root), train=False, device="no-such-device")

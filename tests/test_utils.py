"""The helpers students get: network, one epoch, accuracy."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from utils import Lenet5, accuracy, show_samples, train_one_epoch


def draws_made(action):
    """Return how many numbers action draws from the global generator."""
    torch.manual_seed(0)
    action()
    state = torch.get_rng_state()
    torch.manual_seed(0)
    for count in range(100):
        if torch.equal(torch.get_rng_state(), state):
            return count
        torch.empty((), dtype=torch.int64).random_()
    raise AssertionError("more than 100 draws, or draws of another kind")


def test_lenet5_output_shape():
    logits = Lenet5()(torch.zeros(7, 1, 28, 28))
    assert logits.shape == (7, 10)


def test_lenet5_parameter_count():
    assert sum(p.numel() for p in Lenet5().parameters()) == 4776


def test_lenet5_options():
    model = Lenet5(input_channels=3, num_classes=5, latent_dim=8)
    assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 5)
    assert model.lin2.in_features == 8


def test_train_one_epoch_on_subset(train_dataset):
    torch.manual_seed(0)
    model = Lenet5()
    before = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(Subset(train_dataset, range(640)), batch_size=32, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss, acc = train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    assert type(loss) is float
    assert type(acc) is float
    assert 0.0 < loss < 10.0
    assert 0.0 <= acc <= 1.0
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_train_one_epoch_loss_is_mean_of_batches(train_dataset):
    torch.manual_seed(0)
    model = Lenet5()
    loader = DataLoader(Subset(train_dataset, range(96)), batch_size=32)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # no change: losses are reproducible
    expected = sum(criterion(model(x), y).item() for x, y in loader) / 3
    loss, _ = train_one_epoch(model, loader, criterion, optimizer)
    assert abs(loss - expected) < 1e-6, f"got {loss}, expected {expected}"


def test_train_one_epoch_draws_two_numbers(train_dataset):
    # One for the loader's base seed, one for its sampler's seed: the same
    # as a plain loop over the loader, which the original figures assume.
    loader = DataLoader(Subset(train_dataset, range(64)), batch_size=32, shuffle=True)
    model = Lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    assert draws_made(lambda: [None for _ in loader]) == 2
    assert draws_made(lambda: train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)) == 2


def test_accuracy_matches_manual_count(test_dataset):
    torch.manual_seed(0)
    model = Lenet5()
    subset = Subset(test_dataset, range(500))
    images = torch.stack([subset[i][0] for i in range(500)])
    labels = torch.tensor([subset[i][1] for i in range(500)])
    with torch.no_grad():
        expected = (model(images).argmax(dim=1) == labels).sum().item() / 500
    got = accuracy(model, DataLoader(subset, batch_size=64))
    assert got == expected
    assert draws_made(lambda: accuracy(model, DataLoader(subset, batch_size=64))) == 1


def test_show_samples_grid(train_dataset):
    fig = show_samples(train_dataset)
    assert len(fig.axes) == 50
    first = fig.axes[0]
    assert first.images[0].get_cmap().name == "gray"
    assert not first.axison


class PlainDataset(Dataset):
    """A dataset accuracy cannot read directly, so it takes the loader's path."""

    def __init__(self, source):
        self.source = source

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        return self.source[index]


def trained_model(train_dataset):
    torch.manual_seed(3)
    model = Lenet5()
    loader = DataLoader(Subset(train_dataset, range(2000)), batch_size=32, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return model


@pytest.mark.parametrize("threads", [1, 2])
def test_accuracy_direct_read_matches_loader(train_dataset, test_dataset, threads):
    # The parallel study's workers evaluate with one thread, the notebook with two.
    model = trained_model(train_dataset)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert_direct_read_matches_loader(model, train_dataset, test_dataset)
    finally:
        torch.set_num_threads(previous)


def assert_direct_read_matches_loader(model, train_dataset, test_dataset):
    cases = [(test_dataset, False), (Subset(test_dataset, range(3000, 7000)), True),
             (Subset(train_dataset, range(10_000)), True)]
    for dataset, shuffle in cases:
        fast = accuracy(model, DataLoader(dataset, batch_size=32, shuffle=shuffle))
        slow = accuracy(model, DataLoader(PlainDataset(dataset), batch_size=32, shuffle=shuffle))
        assert fast == slow, f"{len(dataset)} images, shuffle={shuffle}: {fast} != {slow}"


def test_accuracy_direct_read_draws_like_loader(test_dataset):
    model = Lenet5()
    for shuffle, expected in ((False, 1), (True, 2)):
        loader = DataLoader(test_dataset, batch_size=64, shuffle=shuffle)
        assert draws_made(lambda: accuracy(model, loader)) == expected


def test_accuracy_drop_last_uses_loader(test_dataset):
    model = trained_model(test_dataset)
    subset = Subset(test_dataset, range(100))
    got = accuracy(model, DataLoader(subset, batch_size=32, drop_last=True))
    expected = accuracy(model, DataLoader(PlainDataset(subset), batch_size=32, drop_last=True))
    assert got == expected

"""Reference implementation of the functions students write.

Each function below is copied verbatim into its task cell of
``assignment.ipynb`` by ``tools/sync_notebook.py``, and a test fails when the
two differ. The code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
is what nbgrader removes from the student release; signatures and
docstrings stay, so students keep the interface.

Draws from the global random generator: every iteration over a DataLoader
draws one number, and a shuffled one draws another to seed its sampler. The
figures of the study depend on these draws, so the order of the loops below
is part of the reference.
"""

import time

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import DataLoader

from utils import Lenet5, accuracy, print_epoch, train_one_epoch


def train(model, train_dataset, test_dataset, epochs=10, batch_size=32, lr=0.01, momentum=0.0):
    """Train model with SGD and report its final accuracies.

    Uses a shuffled training loader and an unshuffled test loader, both of
    batch_size, SGD with lr and momentum (0.0 is plain SGD), and the
    cross-entropy loss. Runs train_one_epoch once per epoch, then measures
    the final train and test accuracy with accuracy.

    Returns (train_acc, test_acc, epoch_losses, epoch_train_accuracies): two
    floats, then two lists of floats with one entry per epoch.
    """
    ### BEGIN SOLUTION
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=batch_size, shuffle=False)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    epoch_losses, epoch_train_accuracies = [], []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss, train_acc = train_one_epoch(model, train_loader, criterion, optimizer)
        epoch_losses.append(loss)
        epoch_train_accuracies.append(train_acc)
        print_epoch(epoch, epochs, loss, train_acc, time.perf_counter() - start)

    train_acc = accuracy(model, train_loader)
    test_acc = accuracy(model, test_loader)
    print(f"Train Accuracy: {train_acc:.4f}; Test Accuracy: {test_acc:.4f}")
    return train_acc, test_acc, epoch_losses, epoch_train_accuracies
    ### END SOLUTION


def plot_losses(results, setting_name):
    """Plot the training loss per epoch, one panel per setting.

    results maps each setting to {momentum: the tuple train returned}; each
    panel draws one curve per momentum, in that order. Returns the figure.
    """
    ### BEGIN SOLUTION
    settings = list(results)
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for momentum, (_, _, epoch_losses, _) in results[setting].items():
            epochs = range(1, len(epoch_losses) + 1)
            ax.plot(epochs, epoch_losses, marker="o", label=f"momentum {momentum}")
            ax.set_xticks(epochs)
        ax.set_title(f"{setting_name} = {setting}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (mean over batches)")
        ax.legend()
    fig.suptitle(f"SGD with and without momentum, across {setting_name}s")
    fig.tight_layout()
    return fig
    ### END SOLUTION


def sweep_lr(arr_lr, train_dataset, test_dataset, epochs=5):
    """Train a fresh Lenet5 per learning rate and momentum; plot the losses.

    Calls torch.manual_seed(1) once, then for each learning rate in order
    trains with momentum 0.0 and then 0.9, at batch size 32.
    Returns (results, figure) with results[lr][momentum] = train's tuple.
    """
    ### BEGIN SOLUTION
    torch.manual_seed(1)
    results = {}
    for lr in arr_lr:
        results[lr] = {}
        for momentum in (0.0, 0.9):
            print(f"lr {lr}, momentum {momentum}:")
            results[lr][momentum] = train(Lenet5(), train_dataset, test_dataset,
                                          epochs=epochs, lr=lr, momentum=momentum)
    return results, plot_losses(results, "learning rate")
    ### END SOLUTION


def sweep_batchsize(arr_batchsize, train_dataset, test_dataset, epochs=5):
    """Train a fresh Lenet5 per batch size and momentum at lr 0.01; plot the losses.

    Calls torch.manual_seed(1) once, then for each batch size in order
    trains with momentum 0.0 and then 0.9.
    Returns (results, figure) with results[batch_size][momentum] = train's tuple.
    """
    ### BEGIN SOLUTION
    torch.manual_seed(1)
    results = {}
    for batch_size in arr_batchsize:
        results[batch_size] = {}
        for momentum in (0.0, 0.9):
            print(f"batch size {batch_size}, momentum {momentum}:")
            results[batch_size][momentum] = train(Lenet5(), train_dataset, test_dataset, epochs=epochs,
                                                  batch_size=batch_size, lr=0.01, momentum=momentum)
    return results, plot_losses(results, "batch size")
    ### END SOLUTION

"""Helpers given to students: the network, one training epoch, accuracy.

Contract shared by every helper here: a loader yields ``(images, labels)``,
with images of shape (N, 1, 28, 28) as floats in [0, 1] and labels of shape
(N,) as int64 class indices. Losses are cross-entropy in nats per sample.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import Dataset, RandomSampler, SequentialSampler, Subset
from torchvision.datasets import MNIST
from tqdm.auto import tqdm


# Training and grading run on the GPU when there is one, with the data kept
# there, so no batch is copied from the host.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class InMemoryMNIST(Dataset):
    """MNIST as torchvision's ``MNIST(root, train, transform=ToTensor())`` gives it, held in memory.

    ``data``, ``targets`` and ``classes`` are torchvision's, and indexing
    returns the same ``(image, label)`` pair: an image of shape (1, 28, 28)
    in [0, 1] and an int. The images are converted once, up front, and a
    DataLoader takes whole batches from ``__getitems__``, so no per-sample
    PIL work is left. Through a DataLoader, batches and the draws from the
    global random generator are identical to torchvision's.
    """

    def __init__(self, root, train=True, download=True, device=DEVICE):
        source = MNIST(root, train=train, download=download)
        self.root, self.train, self.device = root, train, torch.device(device)
        self.data, self.targets, self.classes = source.data, source.targets, source.classes
        # ToTensor converts uint8 to float and then divides by 255: the same
        # operations in the same order give the same bits.
        self.images = self.data.unsqueeze(1).float().div(255).to(self.device)  # (N, 1, 28, 28)
        self.labels = self.targets.to(self.device)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])

    def __getitems__(self, indices):
        # One gather per batch. default_collate stacks the views back into
        # one tensor, and the labels as 0-d tensors, so the batch stays on
        # the device and equals the int labels torchvision's path collates.
        index = torch.as_tensor(indices, device=self.device)
        return list(zip(self.images[index].unbind(0), self.labels[index].unbind(0)))


class Lenet5(nn.Module):
    """The small LeNet-5-style network of the exercise: 4,776 parameters.

    The modules, their order and their attribute names fix the order in which
    parameters are created, and so the initial weights under a given
    ``torch.manual_seed``: every figure of the study depends on them.
    """

    def __init__(self, input_channels=1, num_classes=10, latent_dim=32):
        super().__init__()
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(input_channels, 3, kernel_size=5, padding="same"),  # (N, 3, 28, 28)
            nn.ReLU(),
            nn.AvgPool2d(2),  # (N, 3, 14, 14)
            nn.Conv2d(3, 8, kernel_size=5),  # (N, 8, 10, 10)
            nn.ReLU(),
            nn.AvgPool2d(2),  # (N, 8, 5, 5)
            nn.Conv2d(8, 16, kernel_size=5),  # (N, 16, 1, 1)
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (N, 16)
            nn.Linear(16, latent_dim),  # no activation: a linear latent code
        )
        self.lin2 = nn.Linear(latent_dim, num_classes)

    def forward(self, x):
        return self.lin2(self.feature_extractor(x))  # logits, (N, num_classes)


def show_samples(dataset, rows=5, columns=10):
    """Show the first rows * columns images of dataset in a grid; return the figure."""
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows))
    for index, ax in enumerate(axes.flat):
        image, label = dataset[index]
        ax.imshow(image.squeeze(0).cpu().numpy(), cmap="gray")
        ax.set_title(str(label), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def device_of(loader):
    """Return the device a loader's dataset keeps its data on (CPU if unknown)."""
    dataset = loader.dataset
    while not hasattr(dataset, "device") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset  # look through Subset and similar wrappers
    return getattr(dataset, "device", torch.device("cpu"))


def train_one_epoch(model, train_loader, criterion, optimizer):
    """Train model for one pass over train_loader.

    Returns (mean of the batch losses, accuracy of the predictions made
    during the pass), both as floats. The accuracy is measured on the fly,
    so it lags the model's accuracy at the end of the epoch.
    """
    model.train()
    model.to(device_of(train_loader))
    loss_sum, correct, seen, batches = 0.0, 0, 0, 0
    # The bar is advanced by hand: tqdm.auto's class, given the loader
    # itself, iterates it twice, and each DataLoader iteration draws from the
    # global random generator, which would change every later figure.
    with tqdm(total=len(train_loader), desc="batches", leave=False) as bar:
        for images, labels in train_loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = criterion(logits, labels)
            loss.backward()
            optimizer.step()

            loss_sum += loss.item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
            batches += 1
            bar.update()
    return loss_sum / batches, correct / seen


# Images per forward pass when accuracy reads the tensors directly. A chunk's
# activations then stay in a core's 2 MB cache: 512 images read the 60,000
# training images twice as fast as 2,048 did on a 2-core x86-64 CPU.
EVAL_CHUNK = 512


def accuracy(model, loader):
    """Return the fraction of samples in loader whose argmax prediction is right."""
    model.eval()
    model.to(device_of(loader))
    with torch.inference_mode():
        tensors = whole_pass_tensors(loader)
        if tensors is not None:
            return count_correct(model, *tensors) / len(tensors[1])
        correct, seen = 0, 0
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
    return correct / seen


def whole_pass_tensors(loader):
    """Return (images, labels) of every sample one pass of loader yields, or None.

    Only for a loader that yields each sample of an InMemoryMNIST (or a
    Subset of one) exactly once, in any order. The loader is still started,
    so it draws the same numbers from the global generator as a full pass.
    """
    dataset, indices = loader.dataset, None
    if isinstance(dataset, Subset):
        dataset, indices = dataset.dataset, torch.as_tensor(dataset.indices)
    plain_sampler = isinstance(loader.sampler, (SequentialSampler, RandomSampler)) and \
        not getattr(loader.sampler, "replacement", False) and \
        getattr(loader.sampler, "_num_samples", None) is None
    if not (isinstance(dataset, InMemoryMNIST) and plain_sampler and loader.batch_size
            and not loader.drop_last):
        return None
    iterator = iter(loader)  # draws the base seed
    next(iterator, None)  # a shuffled loader draws its sampler's seed here
    if indices is None:
        return dataset.images, dataset.labels
    indices = indices.to(dataset.device)
    return dataset.images[indices], dataset.labels[indices]


def count_correct(model, images, labels):
    # NOTE: on the CPU measured (x86-64, torch 2.14.1), an image's logits do
    # not depend on how many images share the forward pass, so this count
    # equals the loader's. tests/test_utils.py compares the two.
    correct = 0
    for start in range(0, len(labels), EVAL_CHUNK):
        logits = model(images[start:start + EVAL_CHUNK])
        correct += (logits.argmax(dim=1) == labels[start:start + EVAL_CHUNK]).sum().item()
    return correct


def print_epoch(epoch, epochs, loss, train_acc, seconds):
    """Print one fixed-width progress line for a finished epoch."""
    print(f"  epoch {epoch:>2}/{epochs:<2}  loss {loss:.4f}  "
          f"train acc {train_acc:.4f}  {seconds:5.1f} s", flush=True)


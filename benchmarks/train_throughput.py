"""Training throughput of `modlearn.fit` against (a) the usual tutorial pipeline and (b) a bare loop.

(a) torchvision-style: PIL images through per-sample `ToTensor`/`Normalize` transforms and a
    `DataLoader` with `num_workers=0` (as on Binder); (b) a hand-written loop over tensors already
    in memory, the floor no library can beat. Same model init, data, batch size and epochs.
Each pipeline is timed `--repeats` times, interleaved, and the fastest run of each is kept.

    python benchmarks/train_throughput.py [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

import modlearn as ml
from modlearn.data import default_root, digits_arrays, mnist_on_disk, read_idx_split

BATCH = 128


class PILImages(torch.utils.data.Dataset):
    """Hands out `(PIL image, label)` pairs of uint8 arrays through `transform`, like torchvision's MNIST."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def uint8_images() -> tuple[np.ndarray, np.ndarray, str]:
    """MNIST's test split when on disk (as on Binder with MODLEARN_DATA), else digits upsampled to 28x28."""
    if mnist_on_disk():
        images, labels = read_idx_split(default_root() / "MNIST" / "raw", "t10k")
        return images, labels, "MNIST test split (10,000 real 28x28 images)"
    images, labels = digits_arrays()
    big = F.interpolate(torch.as_tensor(images).float().unsqueeze(1), size=28, mode="bilinear")
    return (
        big.squeeze(1).clamp(0, 255).byte().numpy(),
        labels,
        "digits upsampled to 28x28 (MNIST not on disk)",
    )


def run_dataloader(model, images, labels, epochs: int) -> float:
    mean, std = images.mean() / 255, images.std() / 255
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    loader = DataLoader(PILImages(images, labels, tf), batch_size=BATCH, shuffle=True, num_workers=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return time.perf_counter() - start


def run_bare(model, x, y, epochs: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        xs, ys = x[perm], y[perm]
        for i in range(0, len(y), BATCH):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[i : i + BATCH]), ys[i : i + BATCH]).backward()
            opt.step()
    return time.perf_counter() - start


def run_fit(model, x, y, epochs: int) -> float:
    config = ml.TrainConfig(epochs=epochs, batch_size=BATCH, lr=1e-3, device="cpu", progress=False)
    start = time.perf_counter()
    ml.fit(model, ml.Split(x, y), config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    images, labels, source = uint8_images()
    x = torch.as_tensor(images).float().div(255).unsqueeze(1)
    x = (x - x.mean()) / x.std()
    y = torch.as_tensor(labels, dtype=torch.long)
    n = len(y) * args.epochs
    print(
        f"data: {source}; batch {BATCH}, {args.epochs} epochs, {args.repeats} interleaved repeats (best kept)"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device cpu\n"
    )
    for kind in ("mlp", "cnn"):
        torch.manual_seed(0)
        init = ml.make_model(kind, (1, 28, 28))
        best = {"fit": float("inf"), "dataloader": float("inf"), "bare": float("inf")}
        for _ in range(args.repeats):
            for name, fn, data in (
                ("dataloader", run_dataloader, (images, labels)),
                ("bare", run_bare, (x, y)),
                ("fit", run_fit, (x, y)),
            ):
                best[name] = min(best[name], fn(copy.deepcopy(init), *data, args.epochs))
        rate = {k: n / v for k, v in best.items()}
        print(
            f"{kind.upper():>4}: fit {rate['fit']:8.0f} samples/s | (a) DataLoader+transforms "
            f"{rate['dataloader']:8.0f} | (b) bare loop {rate['bare']:8.0f}"
        )
        print(
            f"      fit / (a) = {rate['fit'] / rate['dataloader']:.2f}x   "
            f"fit / (b) = {rate['fit'] / rate['bare']:.3f}x"
        )


if __name__ == "__main__":
    main()

"""How long clusterability takes: fitting co-clusters and computing C for every layer of the CNN
(notebook 01, MNIST-sized) and for one 1024x1024 MLP layer, against scikit-learn's
`SpectralCoclustering` as the baseline; and what the loss adds to one training step.

Run: `python benchmarks/clusterability_speed.py` (about a minute on 2 cores).
"""

from __future__ import annotations

import time
from functools import partial

import torch
from sklearn.cluster import SpectralCoclustering

from modlearn import cluster
from modlearn.models import CNN, MLP
from modlearn.train import CrossEntropy

K = 4


def best_time(fn, repeats: int = 3) -> float:
    """The fastest of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_layers(model: torch.nn.Module, title: str) -> tuple[float, float]:
    """Print per-layer times (ours, sklearn, C); return the summed co-clustering times."""
    print(f"\n{title}")
    print(f"{'layer':<14} {'out x in':>11} {'ours (s)':>9} {'sklearn (s)':>12} {'C (ms)':>8}")
    ours_total = sklearn_total = 0.0
    for name in cluster.readable_layers(model, K):
        weight = cluster.layer_weight(model, name).detach()
        ours = best_time(partial(cluster.spectral_coclusters, weight, K))
        edges = cluster.squared_edges(weight).sqrt().numpy() + 1e-12
        theirs = best_time(partial(SpectralCoclustering(K, random_state=0).fit, edges))
        clusters = cluster.spectral_coclusters(weight, K)
        c_time = best_time(partial(cluster.clusterability, weight, clusters), repeats=20)
        out, inp = weight.shape[:2]
        print(f"{name:<14} {out:>5}x{inp:<5} {ours:>9.3f} {theirs:>12.3f} {1e3 * c_time:>8.3f}")
        ours_total, sklearn_total = ours_total + ours, sklearn_total + theirs
    return ours_total, sklearn_total


def step_overhead(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Time of one forward+backward with the clusterability loss / without it."""
    plain = CrossEntropy()
    loss = cluster.ClusterabilityLoss(cluster.model_coclusters(model, K), lam=40.0)

    def step(objective):
        model.zero_grad()
        objective(model, (x, y))[0].backward()

    for objective in (plain, loss):  # warm-up
        step(objective)
    return best_time(lambda: step(loss), 10) / best_time(lambda: step(plain), 10)


def main() -> None:
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}, k = {K}")
    cnn_ours, cnn_sklearn = time_layers(CNN(1, (32, 64, 128), 10, 28), "CNN of notebook 01 (28x28 input)")
    wide = MLP(1024, hidden=(1024,), num_classes=10)
    mlp_ours, mlp_sklearn = time_layers(wide, "MLP with a 1024x1024 layer")
    ratio = step_overhead(wide, torch.randn(128, 1024), torch.randint(0, 10, (128,)))
    print(
        f"\nco-clustering every CNN layer: {cnn_ours:.3f} s (sklearn {cnn_sklearn:.3f} s, "
        f"ratio ours/sklearn {cnn_ours / cnn_sklearn:.2f})"
    )
    print(
        f"co-clustering the 1024-wide MLP: {mlp_ours:.3f} s (sklearn {mlp_sklearn:.3f} s, "
        f"ratio ours/sklearn {mlp_ours / mlp_sklearn:.2f})"
    )
    print(f"training step with the loss / without it (1024-wide MLP, batch 128): {ratio:.2f}x")


if __name__ == "__main__":
    main()

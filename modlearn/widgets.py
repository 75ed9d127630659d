"""ipywidgets explorers built on `viz`. Importable without a display; each returns the widget.

Headless runs (papermill, nbval) draw the initial state once, so notebooks never break there.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from . import viz


def prediction_browser(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       class_names=None, per_page: int = 16):
    """Browse `images (n, C, H, W)` a page at a time with the model's predictions (wrong in red).

    A toggle shows only the mistakes.
    """
    import ipywidgets as widgets

    from .train import predict

    preds = predict(model, images).argmax(dim=1)
    wrong = (preds != labels.cpu()).nonzero().flatten()

    def show(page: int = 0, mistakes_only: bool = False) -> None:
        idx = wrong if mistakes_only else torch.arange(len(images))
        chosen = idx[page * per_page:(page + 1) * per_page]
        if len(chosen) == 0:
            print("no images on this page")
            return
        viz.image_grid(images[chosen], labels[chosen].cpu(), preds[chosen], class_names=class_names)
        plt.show()

    pages = max(1, -(-len(images) // per_page) - 1)
    return widgets.interactive(show, page=widgets.IntSlider(0, 0, pages, description="page"),
                               mistakes_only=widgets.Checkbox(False, description=f"only the {len(wrong)} mistakes"))


# --------------------------------------------------------------------------- added for notebook 04 (clusterability)

def cluster_explorer(models: dict[str, torch.nn.Module], max_k: int = 8, seed: int = 0):
    """Choose a model, a layer and k: fits co-clusters, redraws the block-sorted `|W|` and prints C
    beside the C of a random Gaussian matrix of the same shape under its own fitted co-clusters."""
    import ipywidgets as widgets

    from .cluster import clusterability, layer_weight, random_baselines, readable_layers, spectral_coclusters

    if not models:
        raise ValueError("models is empty: pass {name: model}, e.g. {'E2E': mlp}")
    names = readable_layers(next(iter(models.values())), 2)
    if not names:
        raise ValueError("the model has no Linear or Conv2d layer with two neurons a side to cluster")

    def show(model: str = next(iter(models)), layer: str = names[0], k: int = 4) -> None:
        weight = layer_weight(models[model], layer)
        if k > min(weight.shape[:2]):
            print(f"{layer} has only {min(weight.shape[:2])} neurons on one side: choose k <= that")
            return
        clusters = spectral_coclusters(weight, k, seed, layer)
        viz.cluster_heatmap(weight, clusters, title=f"{model} {layer}, k={k}")
        plt.show()
        base = random_baselines(*weight.shape[:2], k, trials=3, seed=seed)["fitted"]
        print(f"C = {float(clusterability(weight.detach(), clusters)):.3f}; a random Gaussian {tuple(weight.shape[:2])} matrix "
              f"under its own fitted co-clusters: {base:.3f}; 1/k = {1 / k:.3f}")

    return widgets.interactive(show, model=widgets.Dropdown(options=list(models), description="model"),
                               layer=widgets.Dropdown(options=names, description="layer"),
                               k=widgets.IntSlider(4, 2, max_k, description="k"))

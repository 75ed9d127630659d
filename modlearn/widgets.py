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


# --------------------------------------------------------------------------- notebook 02: local training

def modules_explorer(sweep: dict):
    """Pick the number of modules K and see accuracy and activation memory (`local.sweep_modules` output)."""
    import ipywidgets as widgets

    from .local import plot_sweep

    counts = sorted(sweep)

    def show(K: int = counts[-1]) -> None:
        plot_sweep(sweep, highlight=K)
        plt.show()

    return widgets.interactive(show, K=widgets.SelectionSlider(options=counts, value=counts[-1],
                                                               description="modules K"))

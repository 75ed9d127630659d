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


# --------------------------------------------------------------------------- causal models (notebook 08)

def intervention_explorer(dcm, treatment: str, outcome: str, truth=None, image: str | None = None,
                          n: int = 2000, images_shown: int = 16):
    """Choose `do(treatment = x)` (or no intervention) and see the DCM's `P(outcome | ...)` next to
    the truth, plus generated images of the variable `image` when given.

    `dcm` is a trained `modlearn.causal.DCM`; `truth` an array `(treatment size, outcome size)`
    of the true interventional distributions (optional).
    """
    import ipywidgets as widgets

    from .causal import compare_distributions, empirical_distribution

    sizes = [dcm.variables[name].size for name in (treatment, outcome)]
    options = [("no intervention (observe)", -1)] + [(f"do({treatment}={x})", x) for x in range(sizes[0])]

    def show(value: int = 0) -> None:
        do = {} if value < 0 else {treatment: value}
        samples = dcm.sample(n, do=do)
        dists = {"Modular-DCM": empirical_distribution([samples[outcome]], sizes[1:])}
        if truth is not None and value >= 0:
            dists["truth"] = truth[value]
        label = f"do({treatment}={value})" if value >= 0 else "observational"
        compare_distributions(dists, outcome, title=f"P({outcome} | {label})")
        if image is not None:
            viz.image_grid(samples[image][:images_shown], ncols=8)
        plt.show()

    return widgets.interactive(show, value=widgets.Dropdown(options=options, value=0, description="intervene"))

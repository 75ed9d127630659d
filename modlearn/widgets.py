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


# --------------------------------------------------------------------------- notebook 05 (nemo)

def module_picker(analysis, test, initial=(3, 5, 8)):
    """Pick classes; the module for them is cut out of `analysis.model` (a `nemo.ModularAnalysis`)
    live, and its size and accuracy on the `test` split's samples of those classes are shown."""
    import ipywidgets as widgets

    from . import nemo

    num_classes = next(iter(analysis.class_masks.values())).shape[0]

    def show(classes=tuple(initial)) -> None:
        if not classes:
            print("pick at least one class")
            return
        module = analysis.module(classes)
        print(f"module for classes {sorted(classes)}: {sum(p.numel() for p in module.parameters()):,} parameters "
              f"(full model {sum(p.numel() for p in analysis.model.parameters()):,}), "
              f"weight retention {nemo.weight_retention(analysis.model, module):.1%}, "
              f"accuracy {nemo.subtask_accuracy(module, test, classes):.3f} "
              f"(full model restricted to them: {nemo.subtask_accuracy(analysis.model, test, classes, restrict=True):.3f})")
        keep = nemo.module_units(analysis.class_masks, classes)
        nemo.plot_class_masks({"kept units": {name: k[None, :] for name, k in keep.items()}})
        plt.show()

    picker = widgets.SelectMultiple(options=list(range(num_classes)), value=tuple(initial),
                                    description="classes", rows=min(10, num_classes))
    return widgets.interactive(show, classes=picker)

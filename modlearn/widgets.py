"""ipywidgets explorers built on `viz`. Importable without a display; each returns the widget.

Headless runs (papermill) draw the initial state once, so notebooks never break there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

from . import viz
from .models import count_parameters

if TYPE_CHECKING:
    import ipywidgets


def prediction_browser(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, class_names=None, per_page: int = 16
) -> ipywidgets.interactive:
    """Browse `images (n, C, H, W)` a page at a time with the model's predictions (wrong in red).

    A toggle shows only the mistakes.
    """
    import ipywidgets as widgets

    from .train import predict

    preds = predict(model, images).argmax(dim=1)
    wrong = (preds != labels.cpu()).nonzero().flatten()

    def shown(mistakes_only: bool) -> torch.Tensor:
        return wrong if mistakes_only else torch.arange(len(images))

    def last_page(mistakes_only: bool) -> int:
        return max(0, -(-len(shown(mistakes_only)) // per_page) - 1)

    def show(page: int = 0, mistakes_only: bool = False) -> None:
        chosen = shown(mistakes_only)[page * per_page : (page + 1) * per_page]
        if len(chosen) == 0:
            print("no images to show")
            return
        viz.image_grid(images[chosen], labels[chosen].cpu(), preds[chosen], class_names=class_names)
        plt.show()

    slider = widgets.IntSlider(0, 0, last_page(False), description="page")
    toggle = widgets.Checkbox(False, description=f"only the {len(wrong)} mistakes")
    toggle.observe(lambda change: setattr(slider, "max", last_page(change["new"])), names="value")
    return widgets.interactive(show, page=slider, mistakes_only=toggle)


# --------------------------------------------------------------------------- notebook 02: local training


def modules_explorer(sweep: dict) -> ipywidgets.interactive:
    """Pick the number of modules K and see accuracy and activation memory (`local.sweep_modules` output)."""
    import ipywidgets as widgets

    from .local import plot_sweep

    counts = sorted(sweep)

    def show(K: int = counts[-1]) -> None:
        plot_sweep(sweep, highlight=K)
        plt.show()

    return widgets.interactive(
        show, K=widgets.SelectionSlider(options=counts, value=counts[-1], description="modules K")
    )


# -------------------------------------------------------------------------- BIMT training movie (notebook 06)


def network_movie(snapshots, **draw_kwargs) -> ipywidgets.interactive:
    """A slider through a training movie (`bimt.Snapshots`): the network drawn at each snapshot.

    `draw_kwargs` go to `viz.draw_network` (e.g. `input_names`, `output_names`).
    """
    import ipywidgets as widgets

    if len(snapshots) == 0:
        raise ValueError(
            "the Snapshots hook holds no snapshot: pass it to train_bimt(..., hooks=[...]) first"
        )

    def show(index: int = len(snapshots) - 1) -> None:
        viz.draw_network(snapshots.model_at(index), title=f"step {snapshots.steps[index]}", **draw_kwargs)
        plt.show()

    slider = widgets.IntSlider(len(snapshots) - 1, 0, len(snapshots) - 1, description="snapshot")
    return widgets.interactive(show, index=slider)


# --------------------------------------------------------------------------- circuit discovery (notebook 07)


def circuit_explorer(
    models: dict, batches: dict, taus=(0.001, 0.003, 0.01, 0.03, 0.1), metric: str = "mse", output_names=None
) -> ipywidgets.interactive:
    """Pick a network, an output (or class) and ACDC's threshold tau: the circuit is found and
    drawn on the network's geometry. `batches[output] = (clean, corrupt)`; results are cached.
    """
    import ipywidgets as widgets

    from . import circuits

    cache: dict = {}

    def show(network: str, output: int, tau: float) -> None:
        key = (network, output, tau)
        if key not in cache:
            clean, corrupt = batches[output]
            cache[key] = circuits.acdc(
                circuits.PatchingProblem(models[network], clean, corrupt, output, metric), tau
            )
        circuits.draw_circuit(models[network], cache[key])
        plt.show()
        print(cache[key])

    outputs = [(output_names[o] if output_names else str(o), o) for o in batches]
    return widgets.interactive(
        show,
        network=widgets.Dropdown(options=list(models), description="network"),
        output=widgets.Dropdown(options=outputs, description="output"),
        tau=widgets.SelectionSlider(options=list(taus), value=taus[len(taus) // 2], description="tau"),
    )


# --------------------------------------------------------------------------- notebook 05 (nemo)


def module_picker(analysis, test, initial=(3, 5, 8)) -> ipywidgets.interactive:
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
        print(
            f"module for classes {sorted(classes)}: {count_parameters(module):,} parameters "
            f"(full model {count_parameters(analysis.model):,}), "
            f"weight retention {nemo.weight_retention(analysis.model, module):.1%}, "
            f"accuracy {nemo.subtask_accuracy(module, test, classes):.3f} "
            f"(full model restricted to them: "
            f"{nemo.subtask_accuracy(analysis.model, test, classes, restrict=True):.3f})"
        )
        keep = nemo.module_units(analysis.class_masks, classes)
        nemo.plot_class_masks({"kept units": {name: k[None, :] for name, k in keep.items()}})
        plt.show()

    picker = widgets.SelectMultiple(
        options=list(range(num_classes)),
        value=tuple(initial),
        description="classes",
        rows=min(10, num_classes),
    )
    return widgets.interactive(show, classes=picker)


# --------------------------------------------------------------------------- causal models (notebook 08)


def intervention_explorer(
    dcm,
    treatment: str,
    outcome: str,
    truth=None,
    image: str | None = None,
    n: int = 2000,
    images_shown: int = 16,
) -> ipywidgets.interactive:
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

    return widgets.interactive(
        show, value=widgets.Dropdown(options=options, value=0, description="intervene")
    )


# --------------------------------------------------------------------------- clusterability (notebook 04)


def cluster_explorer(
    models: dict[str, torch.nn.Module], max_k: int = 8, seed: int = 0
) -> ipywidgets.interactive:
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
        print(
            f"C = {float(clusterability(weight.detach(), clusters)):.3f}; "
            f"a random Gaussian {tuple(weight.shape[:2])} matrix "
            f"under its own fitted co-clusters: {base:.3f}; 1/k = {1 / k:.3f}"
        )

    return widgets.interactive(
        show,
        model=widgets.Dropdown(options=list(models), description="model"),
        layer=widgets.Dropdown(options=names, description="layer"),
        k=widgets.IntSlider(4, 2, max_k, description="k"),
    )

"""Clusterability: split each layer into k co-clusters and train them to stop interacting.

Golechha, Chaudhary, Velja, Abate & Schoots, "Training Neural Networks for Modularity aids
Interpretability" / "Studying Cross-cluster Modularity in Neural Networks" (arXiv 2502.02470).

- A layer `W: (out, in)` is a bipartite graph between its input and output neurons. Bipartite
  spectral co-clustering (Dhillon 2001) of `|W|` splits both sides *jointly* into k co-clusters,
  so cluster c of the inputs pairs with cluster c of the outputs (the authors' code runs k-means
  on each side separately, which leaves the pairing arbitrary; we do not).
- `C(W) = sum over the k diagonal blocks of W_ij^2 / sum of all W_ij^2`: the share of squared
  weight that stays inside a cluster. Conv layers use per-(out, in)-channel kernel norms.
- The clusterability loss `task - lambda * C` (mean C over layers) with the assignments computed
  once and then held fixed, so that C is a differentiable quadratic function of the weights.

Introduced in `tutorials/04_clusterability.ipynb`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from .api import Run, Timer, block_model, check_hooks, trainable_copy
from .data import Dataset, Split
from .models import squared_edges
from .train import CrossEntropy, History, Hook, Objective, Regularized, TrainConfig, TrainState, evaluate, fit
from .validate import ConfigFields, check_type
from .viz import block_sort  # noqa: F401  (re-exported: cluster.block_sort)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


READABLE_LAYERS = (nn.Linear, nn.Conv2d)


@dataclass
class ClusterConfig:
    """Clusterability training (Golechha et al. 2025, arXiv 2502.02470).

    `k` clusters per layer; `lam` is lambda: 40 in the authors' language-model script, whose layers
    are hundreds of units wide. `lam=None` (the default) scales that 40 to the network:
    `40 * min(1, width / 512)`, `width` the mean of min(out, in) over the clustered layers (see
    `scaled_lam`), so a narrow network is not collapsed by the paper's lambda; pass `lam=40.0` for
    the paper's number, and `train_cluster` warns when the task loss barely fell under it;
    `layers` names the layers to cluster (None: every Linear/Conv2d wide enough for k);
    assignments are fixed, unless `recluster_every` epochs asks to refit them periodically.
    """

    k: int = 4
    lam: float | None = None
    layers: tuple[str, ...] | None = None
    recluster_every: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.integer("k", 2)
        fields.number("lam", 0, optional=True)
        fields.integer("recluster_every", 1, optional=True)
        fields.integer("seed", 0)
        if self.layers is not None:
            check_type(
                "layers",
                self.layers,
                (tuple, list),
                owner="ClusterConfig",
                hint="pass a tuple of layer names",
            )
            for i, name in enumerate(self.layers):
                check_type(
                    f"layers[{i}]",
                    name,
                    str,
                    owner="ClusterConfig",
                    hint="pass layer names, e.g. 'blocks.0.1'",
                )


@dataclass
class Coclusters:
    """Aligned co-cluster labels of one layer: `rows: (out,)` and `cols: (in,)`, values in [0, k)."""

    rows: torch.Tensor
    cols: torch.Tensor
    k: int
    _masks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """`(out, in)` boolean: True where output and input neuron share a cluster (cached per device)."""
        key = str(device)
        if key not in self._masks:
            rows, cols = self.rows.to(device), self.cols.to(device)
            self._masks[key] = rows[:, None] == cols[None, :]
        return self._masks[key]

    def sizes(self) -> list[tuple[int, int]]:
        """`(outputs, inputs)` in each cluster."""
        return [(int((self.rows == c).sum()), int((self.cols == c).sum())) for c in range(self.k)]


# --------------------------------------------------------------------------- reading layers


def layer_weight(model: nn.Module, name: str) -> torch.Tensor:
    """The weight of the Linear or Conv2d layer called `name` in `model` (as in `named_modules`).

    Pass the model itself, not a `torch.compile` wrapper of it (`fit(config.compile=True)` compiles
    internally and leaves your model unwrapped).
    """
    try:
        layer = model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"model has no layer {name!r}; readable layers: {readable_layers(model)}") from err
    if not isinstance(layer, READABLE_LAYERS):
        raise ValueError(
            f"layer {name!r} is a {type(layer).__name__}: clusterability reads only "
            f"Linear and Conv2d layers, e.g. {readable_layers(model)[:4]}"
        )
    return layer.weight


def readable_layers(model: nn.Module, k: int = 2) -> list[str]:
    """Names of the Linear/Conv2d layers with at least `k` neurons (channels) on both sides."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, READABLE_LAYERS) and min(m.weight.shape[:2]) >= k
    ]


def _check_k(k: int, shape: Sequence[int], name: str) -> None:
    if k < 2:
        raise ValueError(f"k={k} must be >= 2: one cluster is the whole layer")
    if k > min(shape[:2]):
        raise ValueError(
            f"layer {name!r} has {shape[0]} outputs and {shape[1]} inputs: "
            f"k={k} clusters cannot be more than min(out, in) = {min(shape[:2])}"
        )


# --------------------------------------------------------------------------- co-clustering and C


def spectral_coclusters(weight: torch.Tensor, k: int, seed: int = 0, name: str = "W") -> Coclusters:
    """Dhillon's bipartite spectral co-clustering of `|W|` into `k` aligned co-clusters.

    `A = |W|` (kernel norms for conv), `An = D_out^-1/2 A D_in^-1/2`; the singular vectors 2..k of
    `An`, rescaled by `D^-1/2`, embed outputs and inputs in one space where k-means clusters
    them together, so label c means the same cluster on both sides.
    """
    _check_k(k, weight.shape, name)
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    a = squared_edges(weight.detach(), name).sqrt().cpu().double().numpy() + 1e-12
    d_out, d_in = 1.0 / np.sqrt(a.sum(axis=1)), 1.0 / np.sqrt(a.sum(axis=0))
    with threadpool_limits(limits=1):  # small problems: threads only add contention
        u, _, vt = np.linalg.svd(d_out[:, None] * a * d_in[None, :], full_matrices=False)
        embedding = np.vstack([d_out[:, None] * u[:, 1:k], d_in[:, None] * vt[1:k].T])
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(embedding)
    labels = torch.as_tensor(labels, dtype=torch.long)
    return Coclusters(rows=labels[: a.shape[0]], cols=labels[a.shape[0] :], k=k)


def clusterability(weight: torch.Tensor, clusters: Coclusters, name: str = "W") -> torch.Tensor:
    """`C = sum_c sum_{i in out_c, j in in_c} W_ij^2 / sum_ij W_ij^2` (a differentiable scalar).

    1.0 when all weight lies in the diagonal blocks; about 1/k for a random assignment.
    """
    sq = squared_edges(weight, name)
    if sq.shape != (len(clusters.rows), len(clusters.cols)):
        raise ValueError(
            f"{name} has {tuple(sq.shape)} (out, in) edges but the clusters label "
            f"{len(clusters.rows)} outputs and {len(clusters.cols)} inputs"
        )
    return (sq * clusters.mask(sq.device)).sum() / sq.sum().clamp_min(1e-30)


def model_coclusters(
    model: nn.Module, k: int, layers: Sequence[str] | None = None, seed: int = 0
) -> dict[str, Coclusters]:
    """Fit co-clusters for each named layer (default: every Linear/Conv2d with >= k neurons a side)."""
    names = list(layers) if layers is not None else readable_layers(model, k)
    if not names:
        raise ValueError(f"no Linear or Conv2d layer has k={k} neurons on both sides: lower k")
    return {name: spectral_coclusters(layer_weight(model, name), k, seed, name) for name in names}


def layer_clusterabilities(model: nn.Module, clusters: Mapping[str, Coclusters]) -> dict[str, float]:
    """C of each clustered layer, as plain floats."""
    with torch.no_grad():
        return {
            name: float(clusterability(layer_weight(model, name), cc, name)) for name, cc in clusters.items()
        }


def model_clusterability(model: nn.Module, clusters: Mapping[str, Coclusters]) -> torch.Tensor:
    """Mean C over the clustered layers (differentiable): the quantity the loss raises."""
    values = [clusterability(layer_weight(model, name), cc, name) for name, cc in clusters.items()]
    return torch.stack(values).mean()


def fitted_clusterability(
    model: nn.Module, k: int, layers: Sequence[str] | None = None, seed: int = 0
) -> float:
    """Mean C of the model under co-clusters fitted to its current weights (how clusterable it is)."""
    return float(model_clusterability(model, model_coclusters(model, k, layers, seed)).detach())


def layer_report(
    model: nn.Module, clusters: Mapping[str, Coclusters], trials: int = 3, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per layer: its C and the C that fitted co-clusters give a Gaussian matrix of the same shape
    (the baseline a trained layer must beat); printable with `format_report`."""
    report = {}
    for name, c in layer_clusterabilities(model, clusters).items():
        out, inp = layer_weight(model, name).shape[:2]
        report[name] = {
            "out": out,
            "in": inp,
            "C": c,
            "random_fitted_C": random_baselines(out, inp, clusters[name].k, trials, seed)["fitted"],
        }
    return report


def format_report(report: Mapping[str, Mapping[str, float]]) -> str:
    """`layer_report` as a text table."""
    lines = [f"{'layer':<20} {'shape':>11} {'C':>6} {'random fitted C':>16}"]
    lines += [
        f"{name:<20} {r['out']:>5}x{r['in']:<5} {r['C']:>6.3f} {r['random_fitted_C']:>16.3f}"
        for name, r in report.items()
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- baselines


def random_coclusters(n_out: int, n_in: int, k: int, seed: int = 0) -> Coclusters:
    """A random balanced assignment: each side split into k (near-)equal groups."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(n_out)[torch.randperm(n_out, generator=gen)] % k
    cols = torch.arange(n_in)[torch.randperm(n_in, generator=gen)] % k
    return Coclusters(rows=rows, cols=cols, k=k)


def random_baselines(n_out: int, n_in: int, k: int, trials: int = 10, seed: int = 0) -> dict[str, float]:
    """C of Gaussian `(n_out, n_in)` matrices: under a random balanced assignment (about 1/k) and
    under their own fitted co-clusters (higher: spectral clustering finds structure in noise)."""
    gen = torch.Generator().manual_seed(seed)
    assigned, fitted = [], []
    for t in range(trials):
        w = torch.randn(n_out, n_in, generator=gen)
        assigned.append(float(clusterability(w, random_coclusters(n_out, n_in, k, seed + t))))
        fitted.append(float(clusterability(w, spectral_coclusters(w, k, seed))))
    return {
        "random_assignment": float(np.mean(assigned)),
        "fitted": float(np.mean(fitted)),
        "one_over_k": 1.0 / k,
    }


def planted_blocks(
    n_out: int, n_in: int, k: int, noise: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, Coclusters]:
    """A block-diagonal `(n_out, n_in)` matrix with rows and columns randomly permuted.

    Returns the matrix and its true co-clusters; `noise` adds Gaussian weights off the blocks.
    """
    truth = random_coclusters(n_out, n_in, k, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    w = torch.randn(n_out, n_in, generator=gen)
    off = torch.randn(n_out, n_in, generator=gen) * noise
    return torch.where(truth.mask(), w, off), truth


# --------------------------------------------------------------------------- training


class ClusterabilityLoss(Regularized):
    """`task + lambda * (1 - C)`: the clusterability loss `task - lambda * C` shifted by the
    constant lambda, so the logged penalty is the *enmeshment* `1 - C` (same gradients).

    `clusters` maps layer names to fixed co-clusters; `Recluster` may refit them.
    """

    def __init__(
        self, clusters: Mapping[str, Coclusters], lam: float = 40.0, task: Objective | None = None
    ) -> None:
        if not clusters:
            raise ValueError("clusters is empty: fit them first with model_coclusters(model, k)")
        self.clusters = dict(clusters)
        super().__init__(task or CrossEntropy(), self.enmeshment, lam, name="enmeshment")

    def enmeshment(self, model: nn.Module) -> torch.Tensor:
        return 1.0 - model_clusterability(model, self.clusters)


class Recluster(Hook):
    """Refit the loss's co-clusters from the current weights every `every` epochs."""

    def __init__(self, loss: ClusterabilityLoss, every: int = 1, seed: int = 0) -> None:
        self.loss, self.every, self.seed = loss, every, seed

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self.every == 0:
            k = next(iter(self.loss.clusters.values())).k
            self.loss.clusters = model_coclusters(state.model, k, list(self.loss.clusters), self.seed)


@dataclass
class ClusterExtras:
    """What `train_cluster` returns besides the model: `clusters`, the co-clusters in use at the end
    (layer name -> `Coclusters`, fitted on the trained copy's starting weights unless given).

    `lambda_sweep` also measures each run: `acc` (test accuracy), `clusterability` (mean C under
    `clusters`) and `fitted_clusterability` (mean C under co-clusters refitted to the final weights).
    """

    clusters: dict[str, Coclusters]
    acc: float | None = None
    clusterability: float | None = None
    fitted_clusterability: float | None = None


PAPER_LAM = 40.0  # the authors' lambda, for layers hundreds of units wide
REFERENCE_WIDTH = 512  # the layer width (min(out, in)) at which the default lambda reaches PAPER_LAM
STALLED = 0.5  # the task loss ending above half its start: lambda is winning over the task


def scaled_lam(model: nn.Module, clusters: Mapping[str, Coclusters]) -> float:
    """The default lambda for `model`: `PAPER_LAM * min(1, width / REFERENCE_WIDTH)`, `width` the mean
    min(out, in) of the clustered layers (the enmeshment penalty is the same size for any width,
    while a narrow layer's task gradient is smaller, so the paper's 40 overpowers it)."""
    widths = [min(layer_weight(model, name).shape[:2]) for name in clusters]
    return PAPER_LAM * min(1.0, float(np.mean(widths)) / REFERENCE_WIDTH)


def task_loss_stalled(history: History, window: int = 10) -> float:
    """The task loss of the last `window` steps over that of the first `window` (mean `task_loss`);
    0.0 when the run had fewer than `2 * window` steps. Near 1: the task did not learn."""
    losses = np.asarray(history.steps.get("task_loss", []), dtype=float)
    if len(losses) < 2 * window:
        return 0.0
    return float(losses[-window:].mean() / max(losses[:window].mean(), 1e-12))


def train_cluster(
    model: nn.Module,
    data: Dataset | Split,
    config: ClusterConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Iterable[Hook] = (),
    task: Objective | None = None,
    clusters: Mapping[str, Coclusters] | None = None,
) -> Run[ClusterExtras]:
    """Train a copy of `model` with the clusterability loss `task + lam * (1 - C)` through `fit`.

    `model` (a `BlockModel`, or a plain `nn.Sequential` converted by `api.block_model`;
    `x: (batch, *input)` -> `(batch, classes)`) is left unchanged: `run.model` is the trained copy.
    The co-clusters are `clusters` when given, else fitted once on the copy's starting weights;
    `run.extras.clusters` holds those in use at the end.
    `train` goes to `fit` unchanged, `hooks` too. `config.lam=None` uses `scaled_lam` (a narrow
    network is collapsed by the paper's 40); warns, naming a smaller `lam`, when the task loss ended
    above half its start.
    """
    owner = "train_cluster"
    hooks = check_hooks(hooks, owner)
    model = block_model(model, owner)
    check_type("config", config, ClusterConfig, owner=owner, optional=True, hint="pass a ClusterConfig(...)")
    check_type("train", train, TrainConfig, owner=owner, optional=True, hint="pass a TrainConfig(...)")
    check_type(
        "task", task, Objective, owner=owner, optional=True, hint="pass an Objective, e.g. CrossEntropy()"
    )
    config = config or ClusterConfig()
    with Timer() as timer:
        trained = trainable_copy(model)
        if clusters is None:
            clusters = model_coclusters(trained, config.k, config.layers, config.seed)
        lam = scaled_lam(trained, clusters) if config.lam is None else config.lam
        loss = ClusterabilityLoss(clusters, lam, task)
        if config.recluster_every:
            hooks = [Recluster(loss, config.recluster_every, config.seed), *hooks]
        history = fit(trained, data, train or TrainConfig(), objective=loss, hooks=hooks)
    stalled = task_loss_stalled(history)
    if lam > 0 and stalled > STALLED:
        warnings.warn(
            f"train_cluster(lam={lam:g}): the task loss ended at {stalled:.0%} of its start; lam is "
            f"overpowering the task on this network; pass ClusterConfig(lam={lam / 10:g}) or smaller "
            f"(lam=None scales it to the network: {scaled_lam(trained, clusters):g} here)",
            stacklevel=2,
        )
    return Run(trained, history, ClusterExtras(loss.clusters), method="cluster", seconds=timer.seconds)


def lambda_sweep(
    model: nn.Module,
    data: Dataset,
    lams: Sequence[float],
    config: ClusterConfig | None = None,
    train: TrainConfig | None = None,
    task: Objective | None = None,
) -> dict[float, Run[ClusterExtras]]:
    """Train a copy of `model` with each lambda in `lams`, from the same starting weights and the
    same co-clusters (fitted once on `model`). Each `Run`'s extras also hold its test accuracy, C
    under those fixed clusters, and C under clusters refitted to its final weights."""
    config = config or ClusterConfig()
    clusters = model_coclusters(model, config.k, config.layers, config.seed)
    runs = {}
    for lam in lams:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a sweep shows the collapse at large lambda on purpose
            run = train_cluster(model, data, replace(config, lam=lam), train, task=task, clusters=clusters)
        used = run.extras.clusters
        run.extras = replace(
            run.extras,
            acc=evaluate(run.model, data, task)["acc"],
            clusterability=float(model_clusterability(run.model, used).detach()),
            fitted_clusterability=fitted_clusterability(run.model, config.k, list(used), config.seed),
        )
        runs[lam] = run
    return runs


# --------------------------------------------------------------------------- analysis


def ablate_cross_cluster(model: nn.Module, clusters: Mapping[str, Coclusters]) -> nn.Module:
    """A copy of `model` whose cross-cluster weights (off the diagonal blocks) are zero."""
    ablated = copy.deepcopy(model)
    with torch.no_grad():
        for name, cc in clusters.items():
            weight = layer_weight(ablated, name)
            mask = cc.mask(weight.device).to(weight.dtype)
            weight.mul_(mask.view(*mask.shape, *([1] * (weight.ndim - 2))))
    return ablated


def cross_cluster_ablation(
    model: nn.Module, clusters: Mapping[str, Coclusters], data: Dataset | Split
) -> dict[str, float]:
    """Test accuracy before and after zeroing every cross-cluster weight, and the drop."""
    before = evaluate(model, data)["acc"]
    after = evaluate(ablate_cross_cluster(model, clusters), data)["acc"]
    return {"acc": before, "ablated_acc": after, "drop": before - after}


def plot_ablation(ablations: Mapping[str, Mapping[str, float]], chance: float) -> Figure:
    """Per model, test accuracy before and after zeroing every cross-cluster weight (the
    `cross_cluster_ablation` dicts of `ablations`), with chance accuracy as a dashed line."""
    fig, ax = plt.subplots(figsize=(1.3 * len(ablations) + 2.5, 3.2))
    xs = np.arange(len(ablations))
    for offset, key, label in ((-0.2, "acc", "before ablation"), (0.2, "ablated_acc", "after ablation")):
        bars = ax.bar(xs + offset, [a[key] for a in ablations.values()], width=0.4, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.2f})")
    ax.set_xticks(xs, list(ablations))
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.25)
    ax.set_title("zeroing every cross-cluster weight", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", ncol=3)
    fig.tight_layout()
    return fig

"""Size-accuracy frontiers: threshold sweeps, module sizing at matched accuracy, over seeds.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..data import Split
from ..env import seed_everything
from ..models import BlockModel, count_parameters
from ..results import paired_verdict
from ..train import TrainConfig, evaluate, fit
from .extraction import (
    _num_classes,
    class_unit_masks,
    collect_masks,
    extract_module,
    module_units,
    prune_module,
)
from .finetune import FinetuneConfig, finetune_module, finetune_reference, reference_module
from .masks import Keep
from .metrics import (
    cohesion,
    coupling,
    inference_time,
    paper_weight_retention,
    pooled_unit_retention,
    subtask_accuracy,
    subtask_split,
    unit_retention,
    weight_retention,
)
from .train import ModularConfig, train_nemo


def module_point(
    model: BlockModel,
    keep: Keep,
    classes: Sequence[int],
    data,
    finetune: FinetuneConfig | None = None,
    standard: nn.Module | None = None,
) -> dict[str, float]:
    """Size and accuracy of the module `keep` for `classes`: one point of a frontier.

    As cut (`cut_val_acc`, `cut_test_acc`); after the papers' fine-tune when `finetune` is given
    (`val_acc`, `test_acc`, `best_epoch`, and with a separately trained `standard` model NeMo's
    `paper_weight_retention`); sizes `weight_retention` (per-block weights), `unit_retention` (mean
    per layer) and `pooled_unit_retention` (MwT's KRR).
    """
    cut = prune_module(model, keep, classes)
    point = {
        "cut_val_acc": subtask_accuracy(cut, data.val, classes),
        "cut_test_acc": subtask_accuracy(cut, data.test, classes),
        "weight_retention": weight_retention(model, cut),
        "unit_retention": unit_retention(keep),
        "pooled_unit_retention": pooled_unit_retention(keep),
    }
    if finetune is not None:
        tuned = finetune_reference(
            reference_module(model, keep, classes, finetune.seed), data, classes, finetune
        )
        point.update(
            {
                "val_acc": max(tuned.val_acc),
                "test_acc": evaluate(tuned.module, subtask_split(data.test, classes))["acc"],
                "best_epoch": tuned.best_epoch,
            }
        )
        if standard is not None:
            point["paper_weight_retention"] = paper_weight_retention(tuned.module, standard)
    return point


def threshold_sweep(
    model: BlockModel,
    data,
    classes: Sequence[int],
    thresholds: Sequence[float],
    finetune: FinetuneConfig | None = None,
    standard: nn.Module | None = None,
) -> list[dict[str, float]]:
    """One `module_point` per extraction threshold (class masks from `data.train`): a frontier."""
    masks = collect_masks(model, data.train.x)
    points, seen = [], {}
    for threshold in thresholds:
        keep = module_units(class_unit_masks(masks, data.train.y, _num_classes(model), threshold), classes)
        key = tuple(tuple(k.tolist()) for k in keep.values())
        if key not in seen:  # a threshold that keeps the same units gives the same module
            seen[key] = module_point(model, keep, classes, data, finetune, standard)
        points.append({"threshold": float(threshold), **seen[key]})
    return points


def module_at_matched_accuracy(
    points: Sequence[dict[str, float]],
    reference: float,
    tolerance: float = 0.0,
    size: str = "weight_retention",
    accuracy: str = "val_acc",
) -> dict[str, float] | None:
    """NeMo's module sizing at matched accuracy, the one rule of the series: among `points` (modules,
    e.g. `threshold_sweep`'s), the one of smallest `size` whose `accuracy` is at least
    `reference - tolerance` (`reference`: the accuracy to match, e.g. the standard model's or the
    full network's on the sub-task). None when no module reaches it."""
    target = reference - tolerance
    reaching = [point for point in points if point[accuracy] >= target]
    return min(reaching, key=lambda point: point[size]) if reaching else None


def retention_at_accuracy(points: Sequence[tuple[float, float]], target: float) -> float:
    """The smallest retention among `(retention, accuracy)` points with accuracy >= `target` (nan if none)."""
    best = module_at_matched_accuracy([{"size": r, "acc": a} for r, a in points], target, 0.0, "size", "acc")
    return math.nan if best is None else best["size"]


@dataclass
class Frontiers:
    """Threshold sweeps of several trainings over seeds, with a separately trained standard model.

    `points[name][s]` is `threshold_sweep`'s list for training `name` and seed `seeds[s]`;
    `standard_val_acc[s]` / `standard_test_acc[s]` are the standard model's sub-task accuracies.
    """

    points: dict[str, list[list[dict[str, float]]]]
    seeds: list[int]
    standard_val_acc: list[float]
    standard_test_acc: list[float]

    def matched(self, tolerance: float, size: str = "weight_retention") -> dict[str, list[dict | None]]:
        """Per training and seed, the smallest module whose *validation* accuracy after fine-tuning
        reaches that seed's standard model minus `tolerance` (None when no threshold does)."""
        return {
            name: [
                module_at_matched_accuracy(points, self.standard_val_acc[s], tolerance, size)
                for s, points in enumerate(runs)
            ]
            for name, runs in self.points.items()
        }

    def sizes(self, tolerance: float, size: str = "weight_retention") -> dict[str, list[float]]:
        """Per training, the matched module's `size` per seed (nan where no module reaches the target)."""
        return {
            name: [math.nan if point is None else point[size] for point in points]
            for name, points in self.matched(tolerance, size).items()
        }

    def verdict(self, a: str, b: str, tolerance: float, size: str = "weight_retention") -> str:
        """Training `a`'s matched module size relative to `b`'s, paired over seeds (`paired_verdict`)."""
        sizes = self.sizes(tolerance, size)
        return paired_verdict(sizes[a], sizes[b])

    def summary(self, tolerance: float) -> dict[str, dict[str, float]]:
        """Per training, mean and sd over seeds of the matched module's sizes (per-block weight
        retention, NeMo's paper retention, MwT's pooled KRR) and test accuracy after fine-tuning,
        with the number of seeds whose sweep reached the target."""
        rows = {}
        for name, points in self.matched(tolerance).items():
            reached = [point for point in points if point is not None]
            row: dict[str, float] = {"seeds reaching": len(reached)}
            for key in ("weight_retention", "paper_weight_retention", "pooled_unit_retention", "test_acc"):
                values = [point[key] for point in reached if key in point]
                row[f"{key} mean"] = float(np.mean(values)) if values else math.nan
                row[f"{key} sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            rows[name] = row
        return rows


def frontier_sweep(
    make_model: Callable[[], BlockModel],
    data,
    classes: Sequence[int],
    configs: dict[str, ModularConfig],
    seeds: Sequence[int],
    train: TrainConfig,
    thresholds: Sequence[float],
    finetune: FinetuneConfig | None = None,
) -> Frontiers:
    """For each seed: a standard model (`make_model()` trained with cross-entropy, no masks), then each
    training of `configs` (on a fresh `make_model()`), swept over `thresholds` with the papers' fine-tune."""
    finetune = finetune or FinetuneConfig()
    points: dict[str, list[list[dict[str, float]]]] = {name: [] for name in configs}
    standard_val, standard_test = [], []
    for seed in seeds:
        run = dataclasses.replace(train, seed=seed, progress=False)
        seed_everything(seed)
        standard = make_model()
        fit(standard, data, run)
        standard_val.append(subtask_accuracy(standard, data.val, classes, restrict=True))
        standard_test.append(subtask_accuracy(standard, data.test, classes, restrict=True))
        for name, config in configs.items():
            seed_everything(seed)
            model = train_nemo(make_model(), data, config, run).model
            tune = dataclasses.replace(finetune, seed=seed)
            points[name].append(threshold_sweep(model, data, classes, thresholds, tune, standard))
    return Frontiers(points, list(seeds), standard_val, standard_test)


@dataclass
class ModularAnalysis:
    """A trained masked model with its binary training masks and class masks, ready to cut modules."""

    model: BlockModel
    train_masks: dict[str, torch.Tensor]
    train_y: torch.Tensor
    class_masks: dict[str, torch.Tensor]

    @classmethod
    def of(cls, model: BlockModel, train: Split, threshold: float = 0.9) -> ModularAnalysis:
        masks = collect_masks(model, train.x)
        return cls(
            model, masks, train.y.cpu(), class_unit_masks(masks, train.y, _num_classes(model), threshold)
        )

    def module(self, classes: Sequence[int]) -> BlockModel:
        return extract_module(self.model, self.class_masks, classes)

    def report(
        self,
        classes: Sequence[int],
        test: Split,
        finetune_on: Split | None = None,
        finetune: TrainConfig | None = None,
    ) -> dict[str, float]:
        """One table row: module and full-model accuracy on `classes`, sizes, times, cohesion, coupling."""
        module = self.module(classes)
        row = {
            "module_acc": subtask_accuracy(module, test, classes),
            "full_acc": subtask_accuracy(self.model, test, classes, restrict=True),
        }
        if finetune_on is not None:
            finetune_module(module, finetune_on, classes, finetune)
            row["finetuned_acc"] = evaluate(module, subtask_split(test, classes))["acc"]
        x = test.x[:256]
        row.update(
            {
                "weight_retention": weight_retention(self.model, module),
                "unit_retention": unit_retention(module_units(self.class_masks, classes)),
                "cohesion": cohesion(self.train_masks, self.train_y, self.class_masks),
                "coupling": coupling(self.class_masks),
                "module_params": count_parameters(module),
                "full_params": count_parameters(self.model),
                "module_ms": 1000 * inference_time(module, x),
                "full_ms": 1000 * inference_time(self.model, x),
            }
        )
        return row

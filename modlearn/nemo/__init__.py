"""Modularizing while training: kernel-level MwT and neuron-level NeMo; module extraction and reuse.

- MwT: Qi, Sun, Gao, Hu, Liang, Yu, "Modularizing while Training: a New Paradigm for Modularizing
  DNN Models", ICSE 2024 (qibinhang/MwT). Per-sample *channel* masks on conv layers, trained with
  cross-entropy + alpha * (1 - same-class cosine) + beta * (different-class cosine).
- NeMo: Bi, Qi, Sun, Gao, Yu, Liang, "Neuron-level modularizing-while-training", arXiv 2508.11348
  (XiaohanBi-Hub/NeMo). Per-sample *neuron* masks on `nn.Linear` layers (so Transformers too),
  trained with cross-entropy + alpha * supervised-contrastive loss on the masks.

A masked layer computes `y = layer(x) * m(x)` where `m(x) >= 0` comes from a small generator fed with
the layer's (pooled) input. After training, a unit belongs to class c when its mask is on for at least
`threshold` of the class-c training samples; the module for a set of classes is the union of theirs,
physically pruned into a smaller standalone network. Introduced in `tutorials/05_nemo.ipynb`.
"""

from __future__ import annotations

from .extraction import (
    PrunedAttention,
    ScatterOutputs,
    class_unit_masks,
    collect_masks,
    extract_module,
    module_units,
    prune_module,
)
from .figures import (
    class_order,
    plot_class_masks,
    plot_frontier,
    plot_tradeoff,
)
from .finetune import (
    FinetuneConfig,
    Finetuned,
    finetune_module,
    finetune_reference,
    reference_module,
)
from .frontiers import (
    Frontiers,
    ModularAnalysis,
    frontier_sweep,
    module_at_matched_accuracy,
    module_point,
    retention_at_accuracy,
    threshold_sweep,
)
from .losses import (
    CONTRASTIVE_LOSSES,
    MaskObjective,
    MwTObjective,
    NeMoObjective,
    cohesion_coupling_losses,
    released_contrastive_loss,
    supervised_contrastive_loss,
)
from .masks import (
    VIT_MASKS,
    Keep,
    MaskedConv2d,
    MaskedLayer,
    MaskedLinear,
    MaskGenerator,
    mask_layer,
    masked_layers,
    masked_model,
    set_unit_filter,
)
from .metrics import (
    backbone_weights,
    cohesion,
    coupling,
    inference_time,
    layer_parameters,
    paper_weight_retention,
    pooled_unit_retention,
    subtask_accuracy,
    subtask_split,
    unit_retention,
    weight_retention,
)
from .train import (
    MODES,
    ModularConfig,
    NemoExtras,
    train_nemo,
)

__all__ = [
    "CONTRASTIVE_LOSSES",
    "FinetuneConfig",
    "Finetuned",
    "Frontiers",
    "Keep",
    "MODES",
    "MaskGenerator",
    "MaskObjective",
    "MaskedConv2d",
    "MaskedLayer",
    "MaskedLinear",
    "ModularAnalysis",
    "ModularConfig",
    "MwTObjective",
    "NeMoObjective",
    "NemoExtras",
    "PrunedAttention",
    "ScatterOutputs",
    "VIT_MASKS",
    "backbone_weights",
    "class_order",
    "class_unit_masks",
    "cohesion",
    "cohesion_coupling_losses",
    "collect_masks",
    "coupling",
    "extract_module",
    "finetune_module",
    "finetune_reference",
    "frontier_sweep",
    "inference_time",
    "layer_parameters",
    "mask_layer",
    "masked_layers",
    "masked_model",
    "module_at_matched_accuracy",
    "module_point",
    "module_units",
    "paper_weight_retention",
    "plot_class_masks",
    "plot_frontier",
    "plot_tradeoff",
    "pooled_unit_retention",
    "prune_module",
    "reference_module",
    "released_contrastive_loss",
    "retention_at_accuracy",
    "set_unit_filter",
    "subtask_accuracy",
    "subtask_split",
    "supervised_contrastive_loss",
    "threshold_sweep",
    "train_nemo",
    "unit_retention",
    "weight_retention",
]

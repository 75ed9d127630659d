"""The mask losses: MwT's cohesion and coupling, NeMo's contrastive losses, and their objectives.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..train import CrossEntropy, Objective
from ..validate import check_float
from .masks import _require_masked


def _pair_cosines(masks: torch.Tensor) -> torch.Tensor:
    """`(batch, units)` -> `(batch, batch)` cosine similarities of the mask vectors."""
    z = F.normalize(masks.to(torch.promote_types(masks.dtype, torch.float32)), dim=1, eps=1e-8)
    return z @ z.T


def cohesion_coupling_losses(masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MwT: `(1 - mean same-class cosine, mean different-class cosine)` over pairs i < j.

    `masks: (batch, units)`, `y: (batch,)`. A term with no pair in the batch is 0.
    """
    cos = _pair_cosines(masks)
    upper = torch.ones_like(cos, dtype=torch.bool).triu(diagonal=1)
    same = (y[:, None] == y[None, :]) & upper
    different = (y[:, None] != y[None, :]) & upper
    zero = cos.new_zeros(())
    cohesion = 1 - cos[same].mean() if same.any() else zero
    coupling = cos[different].mean() if different.any() else zero
    return cohesion, coupling


def _check_tau(tau: float, owner: str) -> float:
    return check_float("tau", tau, 0, low_open=True, owner=owner)


def supervised_contrastive_loss(masks: torch.Tensor, y: torch.Tensor, tau: float = 0.3) -> torch.Tensor:
    """Supervised contrastive loss over the *other* samples (`loss="supcon"`): mean over anchors i of
    `-log( sum_{j != i, y_j = y_i} e^{s_ij/tau} / sum_{j != i} e^{s_ij/tau} )`.

    This is Khosla et al.'s L_in with one positive sum (NeMo's paper formula read literally), not the
    released NeMo code (`released_contrastive_loss`). `s_ij` is the cosine of masks i and j,
    `masks: (batch, units)`, `y: (batch,)`. Anchors with no other sample of their class are skipped
    (0 when none has one).
    """
    tau = _check_tau(tau, "supervised_contrastive_loss")
    n = masks.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=masks.device)
    logits = (_pair_cosines(masks) / tau).masked_fill(eye, float("-inf"))
    positives = (y[:, None] == y[None, :]) & ~eye
    anchors = positives.any(dim=1)
    if not anchors.any():
        return logits.new_zeros(())
    log_all = torch.logsumexp(logits, dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    return (log_all - log_pos)[anchors].mean()


def released_contrastive_loss(masks: torch.Tensor, y: torch.Tensor, tau: float = 0.3) -> torch.Tensor:
    """NeMo's contrastive loss as the released code computes it (`loss="released"`, the default).

    With `P_ij = 1[y_i = y_j]` (the anchor itself included) and `s_ij` the mask cosines:
    `pos_i = sum_j exp(s_ij P_ij / tau)`, `neg_i = sum_j exp(s_ij (1 - P_ij) / tau)`,
    loss = mean over every anchor of `-log((pos_i + eps) / (pos_i + neg_i + eps))`, eps = 1e-8.
    The indicator multiplies the similarity *before* the exponential, so each entry outside a sum
    adds e^0 = 1 to it, and each anchor counts itself as a positive (a class with one sample still
    has an anchor). `masks: (batch, units)`, `y: (batch,)`.
    """
    tau = _check_tau(tau, "released_contrastive_loss")
    sim = _pair_cosines(masks)
    same = (y[:, None] == y[None, :]).to(sim.dtype)
    pos = torch.exp(sim * same / tau).sum(dim=1)
    neg = torch.exp(sim * (1 - same) / tau).sum(dim=1)
    eps = 1e-8
    return -torch.log((pos + eps) / (pos + neg + eps)).mean()


CONTRASTIVE_LOSSES = {"released": released_contrastive_loss, "supcon": supervised_contrastive_loss}


class MaskObjective(Objective):
    """Cross-entropy plus `mask_loss` averaged over the masked layers; validation reports CE."""

    def __init__(self) -> None:
        self._ce = CrossEntropy()

    @property
    def task(self) -> Objective:
        return self._ce

    def mask_loss(self, masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def __call__(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce, metrics = self._ce(model, batch)
        layers = list(_require_masked(model).values())
        total, logged = ce.new_zeros(()), {}
        for layer in layers:
            loss, parts = self.mask_loss(layer.last_mask, batch[1])
            total = total + loss / len(layers)
            for key, value in parts.items():
                logged[key] = logged.get(key, 0) + value.detach() / len(layers)
        return ce + total, {**metrics, "ce": ce.detach(), **logged}


class MwTObjective(MaskObjective):
    """`CE + alpha * (1 - same-class cosine) + beta * different-class cosine` (MwT, alpha 0.5, beta 1.5)."""

    def __init__(self, alpha: float = 0.5, beta: float = 1.5) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def mask_loss(self, masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cohesion, coupling = cohesion_coupling_losses(masks, y)
        return self.alpha * cohesion + self.beta * coupling, {
            "cohesion_loss": cohesion,
            "coupling_loss": coupling,
        }


class NeMoObjective(MaskObjective):
    """`CE + alpha * contrastive loss on the masks` (NeMo, alpha 0.5, tau 0.3); `loss` picks
    `CONTRASTIVE_LOSSES[loss]`: `"released"` (the released code) or `"supcon"`."""

    def __init__(self, alpha: float = 0.5, tau: float = 0.3, loss: str = "released") -> None:
        super().__init__()
        self.alpha, self.tau, self.loss = alpha, tau, CONTRASTIVE_LOSSES[loss]

    def mask_loss(self, masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.loss(masks, y, self.tau)
        return self.alpha * loss, {"contrastive_loss": loss}

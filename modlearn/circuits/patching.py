"""Edge-level activation patching: `PatchingProblem` (clean batch, references, metric) and the
patched linear layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..validate import check_choice, check_int, check_tensor
from .networks import LinearNet, as_linear_net

ABLATIONS = ("patch", "zero", "mean")
METRICS = ("kl", "mse", "logit_diff")
ROUND_OFF = 1e-12  # metric changes below this (float64) count as "no effect"
_MAX_CANDIDATE_ELEMENTS = 2**23


@dataclass
class _State:
    """Clean activations of a masked forward pass: `h[l]: (batch, n_l)`, `z[l]` pre-activations."""

    h: list[torch.Tensor]
    z: list[torch.Tensor]

    @property
    def out(self) -> torch.Tensor:
        return self.z[-1]


class PatchingProblem:
    """Everything a circuit search needs: the network, the clean batch, the references, the metric.

    `clean, corrupt: (batch, ...)` model inputs; `output`: the model output the circuit explains
    (`None`: all of them); `metric` in `METRICS`; `ablation` in `ABLATIONS`.
    """

    def __init__(
        self,
        model: nn.Module,
        clean: torch.Tensor,
        corrupt: torch.Tensor | None = None,
        output: int | None = None,
        metric: str = "mse",
        ablation: str = "patch",
    ) -> None:
        self.net = model if isinstance(model, LinearNet) else as_linear_net(model)
        _check_inputs(self.net, clean, corrupt, output, metric, ablation)
        self.metric_name, self.ablation, self.output = metric, ablation, output
        self.h0 = self.net.prepare(clean)
        self.gates = self.net.gates_for(clean)
        self.full = self.run(self.all_edges(), refs=None)
        self.refs = self._references(corrupt)
        self.targets = self._target_nodes()
        self.y_full = self.full.out
        self.scale = 1.0
        empty = self.metric(self.run(self.no_edges()).out)
        if not float(empty) > 0:
            raise ValueError(
                "the empty circuit gives the same output as the full model on this batch "
                "(clean and corrupt agree?): pick inputs whose outputs differ"
            )
        self.scale = float(empty)

    # ---- masks
    def all_edges(self) -> list[torch.Tensor]:
        """Masks keeping every edge (float64 ones shaped like each weight)."""
        return [torch.ones_like(w) for w in self.net.weights]

    def no_edges(self) -> list[torch.Tensor]:
        return [torch.zeros_like(w) for w in self.net.weights]

    def _target_nodes(self) -> torch.Tensor:
        """Last-layer neurons the metric reads: the chosen output, or all outputs."""
        n_out = self.net.widths[-1]
        wanted = torch.zeros(n_out, dtype=torch.bool, device=self.h0.device)
        if self.output is None or self.metric_name != "mse":
            wanted[:] = True
        else:
            wanted[self.net.output_order[self.output]] = True
        return wanted

    # ---- forward passes
    def _references(self, corrupt: torch.Tensor | None) -> list[torch.Tensor]:
        """`r_l` for each sending layer: `(batch, n_l)` for patching, `(1, n_l)` otherwise."""
        if self.ablation == "zero":
            return [torch.zeros_like(h[:1]) for h in self.full.h[:-1]]
        source = (
            self.full
            if corrupt is None
            else self.run(
                self.all_edges(),
                h0=self.net.prepare(corrupt),
                refs=None,
                gates=self.net.gates_for(corrupt),
            )
        )
        if self.ablation == "mean":
            return [h.mean(dim=0, keepdim=True) for h in source.h[:-1]]
        return source.h[:-1]

    def masked_linear(
        self, layer: int, h: torch.Tensor, mask: torch.Tensor, refs: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """`z = W h + b - ((1 - M) * W)(h - r)`: removed edges carry the reference `r`."""
        w, b = self.net.weights[layer], self.net.biases[layer]
        if refs is None or bool(mask.all()):
            return F.linear(h, w, b)
        return patched_linear(h, w, b, mask, refs[layer])

    def activate(
        self,
        layer: int,
        z: torch.Tensor,
        receivers: torch.Tensor | None = None,
        gates: list[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """The activation after hidden linear `layer`: `act(g * z)` with the clean batch's gate `g`
        (or `gates[layer]`). `z: (..., batch, n)`, or `(c, batch)` for the `receivers` only."""
        gate = (self.gates if gates is None else gates)[layer]
        if gate is None:
            return self.net.activation(z)
        return self.net.activation(z * (gate if receivers is None else gate[:, receivers].T))

    def run(
        self,
        masks: list[torch.Tensor],
        h0: torch.Tensor | None = None,
        refs: list[torch.Tensor] | None | str = "self",
        gates: list[torch.Tensor | None] | None = None,
    ) -> _State:
        """Forward pass of the circuit `masks` on the clean batch (or on `h0`, whose gates are `gates`)."""
        refs = self.refs if isinstance(refs, str) else refs
        h = [self.h0 if h0 is None else h0]
        z = [h[0]]
        last = len(self.net.weights) - 1
        for layer, mask in enumerate(masks):
            z.append(self.masked_linear(layer, h[-1], mask, refs))
            h.append(z[-1] if layer == last else self.activate(layer, z[-1], gates=gates))
        return _State(h, z)

    def metric(self, out: torch.Tensor) -> torch.Tensor:
        """Normalized distance of outputs `(..., batch, n_out)` from the full model's -> `(...)`."""
        full = self.y_full
        if self.metric_name == "kl":
            logp = _log_softmax(full)
            value = (logp.exp() * (logp - _log_softmax(out))).sum(-1).mean(-1)
        elif self.metric_name == "mse":
            value = (out - full)[..., self.targets].pow(2).mean((-1, -2))
        else:
            value = (
                (
                    _logit_difference(out, self.net.output_order[self.output])
                    - _logit_difference(full, self.net.output_order[self.output])
                )
                .abs()
                .mean(-1)
            )
        return value / self.scale

    # ---- removing one edge at a time
    def remove_one(
        self,
        state: _State,
        masks: list[torch.Tensor],
        layer: int,
        receivers: torch.Tensor,
        senders: torch.Tensor,
    ) -> torch.Tensor:
        """Metric after removing edge `(receivers[c], senders[c])` of `layer` alone, for each `c`.

        Vectorized: only the receiver's pre-activation changes, `z_i' = z_i - W_ij (h_j - r_j)`.
        """
        diff = state.h[layer] - self.refs[layer]  # (B, n_l)
        shift = self.net.weights[layer][receivers, senders][:, None] * diff[:, senders].T
        return self.with_receiver(state, masks, layer, receivers, state.z[layer + 1][:, receivers].T - shift)

    def with_receiver(
        self,
        state: _State,
        masks: list[torch.Tensor],
        layer: int,
        receivers: torch.Tensor,
        z_new: torch.Tensor,
    ) -> torch.Tensor:
        """Metric when receiver `receivers[c]` of layer `layer + 1` gets pre-activation `z_new[c]: (B,)`.

        The change is pushed through the layers above as a batch of `(c, B, ...)` candidates.
        """
        if layer + 1 == len(self.net.weights):
            out = state.out.expand(len(receivers), -1, -1).clone()
            out[torch.arange(len(receivers)), :, receivers] = z_new
            return self.metric(out)
        delta = self.activate(layer, z_new, receivers) - state.h[layer + 1][:, receivers].T  # (c, B)
        kept_out = (masks[layer + 1] * self.net.weights[layer + 1])[:, receivers].T  # (c, n_{l+2})
        z = state.z[layer + 2] + delta[:, :, None] * kept_out[:, None, :]
        for above in range(layer + 2, len(self.net.weights)):
            z = self.masked_linear(above, self.activate(above - 1, z), masks[above], self.refs)
        return self.metric(z)

    def edge_effects(
        self, masks: list[torch.Tensor], layer: int, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Metric with each edge of `layer` removed alone from circuit `masks`: `(len(rows), n_l)`
        (all receivers when `rows` is None). Vectorized in chunks; removed edges get the current metric.
        """
        state = self.run(masks)
        rows = torch.as_tensor(
            range(self.net.widths[layer + 1]) if rows is None else rows, device=self.h0.device
        )
        n_in = self.net.widths[layer]
        receivers = rows.repeat_interleave(n_in)
        senders = torch.arange(n_in, device=self.h0.device).repeat(len(rows))
        chunk = self.chunk_size()
        values = torch.cat(
            [
                self.remove_one(state, masks, layer, receivers[i : i + chunk], senders[i : i + chunk])
                for i in range(0, len(senders), chunk)
            ]
        )
        kept = masks[layer][rows].flatten() > 0
        return torch.where(kept, values, self.metric(state.out)).view(len(rows), n_in)

    def edge_effects_loop(
        self, masks: list[torch.Tensor], layer: int, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        """The same as `edge_effects`, one full forward pass per edge (the reference to check against)."""
        rows = list(range(self.net.widths[layer + 1])) if rows is None else list(rows)
        effects = torch.empty(len(rows), self.net.widths[layer], dtype=torch.float64, device=self.h0.device)
        trial = [m.clone() for m in masks]
        for r, i in enumerate(rows):
            for j in range(effects.shape[1]):
                trial[layer][i, j] = 0.0
                effects[r, j] = self.metric(self.run(trial).out)
                trial[layer][i, j] = masks[layer][i, j]
        return effects

    def chunk_size(self) -> int:
        """How many candidate edges to push through the network at once (bounded memory)."""
        return max(1, _MAX_CANDIDATE_ELEMENTS // (len(self.h0) * max(self.net.widths)))


def patched_linear(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """A linear layer whose removed edges carry the reference: `z = W h + b - ((1 - M) * W)(h - r)`.

    `h: (batch, n_in)` clean activations, `weight, mask: (n_out, n_in)` (mask 1 = kept edge),
    `bias: (n_out,)`, `reference: (batch, n_in)` or `(1, n_in)` -> `z: (batch, n_out)`.
    """
    return F.linear(h, weight, bias) - (h - reference) @ ((1 - mask) * weight).T


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """`log_softmax` over the last axis (written out: torch's kernel is very slow on tiny CPU tensors)."""
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)


def _logit_difference(out: torch.Tensor, node: torch.Tensor) -> torch.Tensor:
    """`out[..., c] - mean of the other logits`: `(..., batch, n)` -> `(..., batch)`."""
    chosen = out[..., node]
    return chosen - (out.sum(-1) - chosen) / (out.shape[-1] - 1)


def _check_inputs(
    net: LinearNet,
    clean: torch.Tensor,
    corrupt: torch.Tensor | None,
    output: int | None,
    metric: str,
    ablation: str,
) -> None:
    owner = "PatchingProblem"
    check_choice("metric", metric, METRICS, owner=owner)
    check_choice("ablation", ablation, ABLATIONS, owner=owner)
    check_tensor(owner, "clean", clean)
    if corrupt is not None:
        check_tensor(owner, "corrupt", corrupt)
    check_int("output", output, owner=owner, optional=True)
    n_out = net.widths[-1]
    if output is not None and not 0 <= output < n_out:
        raise ValueError(f"output={output} is out of range: the model has {n_out} outputs (0..{n_out - 1})")
    if metric == "logit_diff" and output is None:
        raise ValueError("metric='logit_diff' needs the class whose logit difference to keep: pass output=c")
    if ablation == "patch" and corrupt is None:
        raise ValueError("ablation='patch' needs a corrupted batch: pass corrupt=..., or use 'zero'/'mean'")
    if corrupt is not None and corrupt.shape != clean.shape:
        raise ValueError(
            f"clean {tuple(clean.shape)} and corrupt {tuple(corrupt.shape)} batches must have "
            "the same shape (one corrupted input per clean input)"
        )
    if len(clean) < 1:
        raise ValueError("the clean batch is empty")

"""Automated circuit discovery on MLPs: edge-level activation patching and ACDC.

ACDC (Conmy, Mavor-Parker, Lynch, Heimersheim, Garriga-Alonso, "Towards Automated Circuit
Discovery for Mechanistic Interpretability", NeurIPS 2023), applied the way Nainani
("Evaluating Brain-Inspired Modular Training in Automated Circuit Discovery for Mechanistic
Interpretability", arXiv 2401.03646) applies it to BIMT-trained MLPs. Notebook 07.

A network `h_{l+1} = act(W_l h_l + b_l)` (no activation after the last layer) is a graph whose
nodes are neurons and whose edges are weights. *Removing* edge `j -> i` of layer `l` means that
neuron `i` receives `W_ij * r_j` instead of `W_ij * h_j`, where `h_j` is the sender's activation
on the clean input and `r_j` a reference: its activation on a paired corrupted input
(``"patch"``), zero (``"zero"``) or its mean activation (``"mean"``). With a 0/1 mask `M_l`:

    z_{l+1} = W_l h_l + b_l - ((1 - M_l) * W_l) (h_l - r_l)

The metric compares the circuit's output with the full model's on the clean batch (KL divergence,
MSE, or the gap in logit difference), divided by its value for the empty circuit, so that
`faithfulness = 1 - metric / empty_metric` is 1 for the full model and 0 for the empty circuit.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import MLP, SpatialMLP
from .validate import ConfigFields, check_bool, check_choice, check_float, check_int, check_tensor, check_type

ABLATIONS = ("patch", "zero", "mean")
METRICS = ("kl", "mse", "logit_diff")
ROUND_OFF = 1e-12  # metric changes below this (float64) count as "no effect"
_MAX_CANDIDATE_ELEMENTS = 2**23


# --------------------------------------------------------------------------- the network view


@dataclass
class LinearNet:
    """An MLP as circuit discovery sees it: float64 copies of its weights.

    `weights[l]: (n_{l+1}, n_l)`, `biases[l]: (n_{l+1},)`; `prepare(x) -> h_0: (batch, n_0)`;
    the model's output `k` is the last layer's neuron `output_order[k]`. `gates` (optional) gives,
    for model inputs `x`, one `(batch, n_{l+1})` multiplier per hidden linear `l` (None: ungated),
    applied to the pre-activation: `h_{l+1} = act(g_l * z_l)`. Input-dependent masks (NeMo/MwT)
    are gates; the circuit treats them as fixed inputs, computed once on the clean batch and once
    on the corrupted one, so patching an edge never changes a mask.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]
    prepare: Callable[[torch.Tensor], torch.Tensor]
    output_order: torch.Tensor
    gates: Callable[[torch.Tensor], list[torch.Tensor | None]] | None = None

    def gates_for(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        """The gate of every hidden linear for model inputs `x` (None where ungated), float64."""
        if self.gates is None:
            return [None] * (len(self.weights) - 1)
        return [None if g is None else g.detach().double() for g in self.gates(x)]

    @property
    def widths(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def num_edges(self) -> int:
        return sum(w.numel() for w in self.weights)


def model_linears(model: nn.Module) -> tuple[list[nn.Linear], nn.Module]:
    """The `nn.Linear`s of an MLP in order and the activation between them.

    Understands a `SpatialMLP` such as `BioMLP` (`linears`, `activation`) and `ml.models.MLP`
    (blocks of `[Flatten,] Linear, activation` and a `Linear` head).
    """
    if isinstance(model, SpatialMLP):
        return list(model.linears), model.activation
    if isinstance(model, MLP):
        linears = [next(m for m in block if isinstance(m, nn.Linear)) for block in model.blocks]
        return linears + [model.head], model.blocks[0][-1]
    raise ValueError(
        f"circuit discovery needs an MLP (BioMLP or modlearn.models.MLP), got {type(model).__name__}"
    )


def as_linear_net(model: nn.Module) -> LinearNet:
    """Read `model`'s weights into a `LinearNet` (float64, on the model's device)."""
    linears, activation = model_linears(model)
    weights = [lin.weight.detach().double() for lin in linears]
    biases = [
        lin.bias.detach().double() if lin.bias is not None else torch.zeros_like(w[:, 0])
        for lin, w in zip(linears, weights, strict=True)
    ]
    device = weights[0].device
    in_perm, out_perm = _permutations(model, weights, device)

    embedding = model.embedding if isinstance(model, SpatialMLP) else None

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        h = (embedding(x).detach() if embedding is not None else x).flatten(1).double()
        if h.shape[1] != weights[0].shape[1]:
            raise ValueError(
                f"inputs have {h.shape[1]} features but the network expects {weights[0].shape[1]}"
            )
        return h if in_perm is None else h[:, in_perm]

    return LinearNet(weights, biases, lambda z: activation(z), prepare, out_perm)


def _permutations(
    model: nn.Module, weights: list[torch.Tensor], device
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Input and output orders of a `SpatialMLP` (swaps move neurons); identity for other MLPs."""
    if not isinstance(model, SpatialMLP):
        return None, torch.arange(weights[-1].shape[0], device=device)
    return model.in_perm.to(device).long(), torch.argsort(model.out_perm.to(device).long())


# --------------------------------------------------------------------------- patching


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


# --------------------------------------------------------------------------- circuits


@dataclass
class Circuit:
    """A circuit: which edges are kept (`masks[l]`: bool, shaped like linear `l`'s weight).

    `metric` is the normalized distance to the full model (0 = identical, 1 = as far as the empty
    circuit); `seconds` the time its discovery took.
    """

    masks: list[torch.Tensor]
    metric: float
    method: str
    seconds: float = 0.0
    tau: float | None = None
    output: int | None = None

    @property
    def edges(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks))

    @property
    def faithfulness(self) -> float:
        """`1 - metric`: 1 when the circuit reproduces the model, 0 for the empty circuit."""
        return 1.0 - self.metric

    def nodes(self) -> list[torch.Tensor]:
        """Per neuron layer, a bool mask of the neurons touched by a kept edge."""
        senders = [m.any(dim=0) for m in self.masks]
        receivers = [m.any(dim=1) for m in self.masks]
        return (
            [senders[0]] + [r | s for r, s in zip(receivers[:-1], senders[1:], strict=True)] + [receivers[-1]]
        )

    def __repr__(self) -> str:
        tau = "" if self.tau is None else f", tau={self.tau:g}"
        return (
            f"Circuit({self.method}{tau}, output={self.output}, edges={self.edges}, "
            f"faithfulness={self.faithfulness:.3f}, {self.seconds:.2f} s)"
        )


@dataclass
class ACDCConfig:
    """Settings of `acdc` (Conmy et al. 2023): threshold `tau` on the normalized metric increase.

    The paper sweeps `tau` (its CLI requires it); KL divergence is its default metric and
    patching with corrupted inputs its default ablation (`--zero-ablation` switches).
    """

    tau: float = 0.01
    metric: str = "mse"
    ablation: str = "patch"

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.number("tau", 0)
        fields.choice("metric", METRICS)
        fields.choice("ablation", ABLATIONS)


def _bool_masks(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    return [(m > 0).cpu() for m in masks]


def acdc(problem: PatchingProblem, tau: float = 0.01, vectorized: bool = True) -> Circuit:
    """ACDC: visit neurons in reverse topological order from the target outputs; for each of a
    neuron's incoming edges, remove it if that raises the metric by at most `tau` (else keep it).

    Exact greedy ACDC, made fast two ways (`vectorized=True`): an edge test only recomputes the
    layers above the receiver, and consecutive edges are tested together (speculatively: after a
    removal, the edges behind it are tested again against the new circuit). `vectorized=False`
    runs one full forward pass per edge test and must take the same decisions. Neurons that no
    kept edge connects to the targets are skipped and their incoming edges removed.
    """
    check_type(
        "problem", problem, PatchingProblem, owner="acdc", hint="pass PatchingProblem(model, clean, corrupt)"
    )
    tau = check_float("tau", tau, 0, owner="acdc")
    check_bool("vectorized", vectorized, owner="acdc")
    prune = _prune_receiver if vectorized else _prune_receiver_loop
    start = time.perf_counter()
    masks = problem.all_edges()
    masks[-1][~problem.targets] = 0.0
    alive = problem.targets
    current = float(problem.metric(problem.run(masks).out))
    for layer in reversed(range(len(masks))):
        masks[layer][~alive] = 0.0
        for receiver in alive.nonzero().flatten().tolist():
            current = prune(problem, masks, layer, receiver, current, tau)
        alive = masks[layer].any(dim=0)
    metric = float(problem.metric(problem.run(masks).out))
    return Circuit(
        _bool_masks(masks),
        metric,
        "acdc" if vectorized else "acdc-loop",
        time.perf_counter() - start,
        tau,
        problem.output,
    )


def _prune_receiver(
    problem: PatchingProblem, masks: list[torch.Tensor], layer: int, receiver: int, current: float, tau: float
) -> float:
    """ACDC's inner loop over the incoming edges of one neuron, vectorized; returns the new metric.

    Each batched pass tests the next edges twice: one at a time (`z_i - W_ij d_j`) and as growing
    prefixes removed together (`z_i - sum_{k <= j} W_ik d_k`). If the next edge stays, the single
    tests settle the run of kept edges up to the next removal; if it goes, the prefix tests settle
    the run of removed edges up to the next kept one. Either way the greedy decisions are exact.
    """
    state = problem.run(masks)
    w = problem.net.weights[layer][receiver]
    diff = state.h[layer] - problem.refs[layer]
    no_effect = (w == 0) | (diff == 0).all(dim=0)
    masks[layer][receiver, no_effect] = 0.0
    senders = (masks[layer][receiver] > 0).nonzero().flatten()
    z_receiver = state.z[layer + 1][:, receiver].clone()
    position, chunk = 0, 16
    while position < len(senders):
        batch = senders[position : position + min(chunk, problem.chunk_size() // 2)]
        shift = w[batch][:, None] * diff[:, batch].T  # (c, B)
        prefixes = z_receiver - shift.cumsum(0)
        values = problem.with_receiver(
            state,
            masks,
            layer,
            torch.full((2 * len(batch),), receiver),
            torch.cat([z_receiver - shift, prefixes]),
        )
        single, prefix = values[: len(batch)], values[len(batch) :]
        if single[0] - current <= tau + ROUND_OFF:  # a run of removals
            steps = prefix - torch.cat([prefix.new_tensor([current]), prefix[:-1]])
            run = max(1, _leading(steps <= tau + ROUND_OFF))  # edge 0: same test as single[0]
            masks[layer][receiver, batch[:run]] = 0.0
            z_receiver, current = prefixes[run - 1].clone(), float(prefix[run - 1])
        else:  # a run of kept edges, then maybe a removal
            run = _leading(single - current > tau + ROUND_OFF)
            if run < len(batch):
                masks[layer][receiver, batch[run]] = 0.0
                z_receiver, current = z_receiver - shift[run], float(single[run])
        resolved = min(run + 1, len(batch))
        position += resolved
        chunk = chunk * 2 if resolved == len(batch) else max(8, 2 * resolved)
    return current


def _leading(flags: torch.Tensor) -> int:
    """How many `True` values `flags` starts with."""
    return int(flags.long().cumprod(0).sum())


def _prune_receiver_loop(
    problem: PatchingProblem, masks: list[torch.Tensor], layer: int, receiver: int, current: float, tau: float
) -> float:
    """The same decisions as `_prune_receiver`, one full forward pass per edge."""
    for sender in range(masks[layer].shape[1]):
        masks[layer][receiver, sender] = 0.0
        value = float(problem.metric(problem.run(masks).out))
        if value - current <= tau + ROUND_OFF:
            current = value
        else:
            masks[layer][receiver, sender] = 1.0
    return current


def acdc_sweep(problem: PatchingProblem, taus: Sequence[float]) -> list[Circuit]:
    """One ACDC circuit per threshold: the Pareto curve of edges kept vs faithfulness."""
    return [acdc(problem, tau) for tau in taus]


# --------------------------------------------------------------------------- baselines


def magnitude_scores(problem: PatchingProblem) -> list[torch.Tensor]:
    """Magnitude pruning's edge score: `|W_ij|`."""
    return [w.abs() for w in problem.net.weights]


def attribution_scores(problem: PatchingProblem) -> list[torch.Tensor]:
    """Attribution patching: a first-order estimate of each edge's effect, for all edges at once.

    Removing edge `j -> i` shifts `z_i` by `-W_ij (h_j - r_j)`; to first order the readout `t`
    (target outputs, log-probabilities for KL, the logit difference) moves by `J_i` times that,
    with `J_i = dt/dz_i` from one backward pass per readout. Score = `mean_batch |dt|^2`.
    """
    net, state = problem.net, problem.full
    zs = [F.linear(state.h[0], net.weights[0], net.biases[0]).requires_grad_(True)]
    for w, b in zip(net.weights[1:], net.biases[1:], strict=True):
        zs.append(F.linear(problem.activate(len(zs) - 1, zs[-1]), w, b))
    readout = _readout(problem, zs[-1])
    grads = [torch.zeros_like(z) for z in zs]
    for k in range(readout.shape[1]):
        for total, g in zip(
            grads, torch.autograd.grad(readout[:, k].sum(), zs, retain_graph=True), strict=True
        ):
            total += g.pow(2)
    diffs = [h - r for h, r in zip(state.h[:-1], problem.refs, strict=True)]
    return [w.pow(2) * (g.T @ d.pow(2)) / len(d) for w, g, d in zip(net.weights, grads, diffs, strict=True)]


def _readout(problem: PatchingProblem, out: torch.Tensor) -> torch.Tensor:
    """What the metric reads from the output: `(batch, m)`."""
    if problem.metric_name == "kl":
        return _log_softmax(out)
    if problem.metric_name == "mse":
        return out[:, problem.targets]
    return _logit_difference(out, problem.net.output_order[problem.output])[:, None]


def ranked_circuit(
    problem: PatchingProblem, scores: list[torch.Tensor], edges: int, method: str, seconds: float = 0.0
) -> Circuit:
    """The best-scored edges that reach the targets, `edges` of them once dangling edges are dropped
    (the fewest top-k edges giving at least that many; fewer if the targets have fewer edges)."""
    scores = [s.clone() for s in scores]
    scores[-1][~problem.targets] = -1.0
    flat = torch.cat([s.flatten() for s in scores])
    if not 0 <= edges <= len(flat):
        raise ValueError(f"edges={edges} must lie in [0, {len(flat)}]")
    order = torch.argsort(flat, descending=True)[: int((flat >= 0).sum())]

    def top(k: int) -> list[torch.Tensor]:
        keep = torch.zeros_like(flat)
        keep[order[:k]] = 1.0
        parts = keep.split([s.numel() for s in scores])
        return prune_dangling(
            [part.view_as(s) for part, s in zip(parts, scores, strict=True)], problem.targets
        )

    low, high = 0, len(order)
    while low < high:  # smallest k whose pruned circuit has >= `edges` edges
        mid = (low + high) // 2
        low, high = (mid + 1, high) if sum(int(m.sum()) for m in top(mid)) < edges else (low, mid)
    masks = top(low)
    metric = float(problem.metric(problem.run(masks).out))
    return Circuit(_bool_masks(masks), metric, method, seconds, None, problem.output)


def prune_dangling(masks: list[torch.Tensor], targets: torch.Tensor) -> list[torch.Tensor]:
    """Remove edges whose receiver no longer reaches a target through kept edges."""
    masks = [m.clone() for m in masks]
    alive = targets
    for layer in reversed(range(len(masks))):
        masks[layer][~alive] = 0.0
        alive = masks[layer].any(dim=0)
    return masks


def baseline_curve(problem: PatchingProblem, method: str, sizes: Sequence[int]) -> list[Circuit]:
    """Circuits of the given sizes from `"attribution"` or `"magnitude"` scores (one scoring)."""
    scorers = {"attribution": attribution_scores, "magnitude": magnitude_scores}
    if method not in scorers:
        raise ValueError(f"unknown baseline {method!r}: choose one of {sorted(scorers)}")
    start = time.perf_counter()
    scores = scorers[method](problem)
    seconds = time.perf_counter() - start
    return [ranked_circuit(problem, scores, int(k), method, seconds) for k in sizes]


# --------------------------------------------------------------------------- reading circuits


def edges_at_faithfulness(circuits: Sequence[Circuit], level: float) -> int | None:
    """The fewest edges among `circuits` whose faithfulness is at least `level` (None if none is)."""
    sizes = [c.edges for c in circuits if c.faithfulness >= level]
    return min(sizes) if sizes else None


def edges_for_faithfulness(problem: PatchingProblem, level: float, taus: Sequence[float]) -> Circuit:
    """ACDC at each threshold of `taus`, in the order given (largest first: smallest circuits, fastest
    runs), up to the first circuit whose faithfulness reaches `level`; that circuit, or the last one
    tried when none does (put `tau = 0`, which keeps every edge with an effect, last)."""
    check_type("taus", taus, (list, tuple), owner="edges_for_faithfulness", hint="pass e.g. (1e-2, 1e-3, 0)")
    if not taus:
        raise ValueError("edges_for_faithfulness(taus=()): taus must list at least one threshold")
    for tau in taus:
        circuit = acdc(problem, tau)
        if circuit.faithfulness >= level:
            break
    return circuit


def circuit_overlap(a: Circuit, b: Circuit) -> int:
    """How many hidden neurons both circuits use (0: the circuits are disjoint inside the network)."""
    return int(sum(int((x & y).sum()) for x, y in zip(a.nodes()[1:-1], b.nodes()[1:-1], strict=True)))


def circuit_output(problem: PatchingProblem, circuit: Circuit) -> torch.Tensor:
    """The circuit's outputs on the clean batch, in the model's output order: `(batch, n_out)`."""
    masks = [m.to(problem.h0.device, torch.float64) for m in circuit.masks]
    return problem.run(masks).out[:, problem.net.output_order]


def apply_circuit(model: nn.Module, circuit: Circuit, problem: PatchingProblem | None = None) -> nn.Module:
    """A copy of `model` that computes the circuit: removed weights set to zero (zero ablation), or
    their mean contribution folded into the biases (mean ablation: pass the `problem`).

    A patching circuit depends on each corrupted input, so it is no fixed model: use `circuit_output`.
    """
    if problem is not None and problem.ablation == "patch":
        raise ValueError(
            "a patching circuit needs the corrupted inputs: use circuit_output(problem, circuit), "
            "or build the problem with ablation='zero' or 'mean'"
        )
    copied = copy.deepcopy(model)
    linears, _ = model_linears(copied)
    if len(linears) != len(circuit.masks):
        raise ValueError(f"the circuit has {len(circuit.masks)} layers but the model {len(linears)}")
    with torch.no_grad():
        for layer, (lin, mask) in enumerate(zip(linears, circuit.masks, strict=True)):
            keep = mask.to(lin.weight.device, lin.weight.dtype)
            if problem is not None and problem.ablation == "mean":
                folded = ((1 - keep) * lin.weight).double() @ problem.refs[layer][0]
                lin.bias += folded.to(lin.bias.dtype)
            lin.weight *= keep
    return copied


# --------------------------------------------------------------------------- one call and pictures


def discover(
    model: nn.Module,
    clean: torch.Tensor,
    corrupt: torch.Tensor | None = None,
    output: int | None = None,
    config: ACDCConfig | None = None,
) -> Circuit:
    """ACDC on `model` in one call: the circuit explaining `output` on `clean` vs `corrupt`."""
    check_type("model", model, nn.Module, owner="discover", hint="pass a torch.nn.Module")
    check_type("config", config, ACDCConfig, owner="discover", optional=True, hint="pass an ACDCConfig(...)")
    config = config or ACDCConfig()
    problem = PatchingProblem(model, clean, corrupt, output, config.metric, config.ablation)
    return acdc(problem, config.tau)


def draw_circuit(model: SpatialMLP, circuit: Circuit, ax=None, title: str | None = None):
    """The circuit on the network's BIMT geometry (`viz.draw_network`): kept edges drawn, others faded."""
    from .viz import draw_network

    label = (
        title
        if title is not None
        else (f"output {circuit.output}: {circuit.edges} edges, faithfulness {circuit.faithfulness:.2f}")
    )
    return draw_network(model, ax=ax, edge_mask=circuit.masks, title=label)


def plot_pareto(curves: dict[str, Sequence[Circuit]], ax=None, title: str | None = None):
    """Edges kept vs faithfulness, one line per network or method. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6)) if ax is None else (ax.figure, ax)
    for name, circuits in curves.items():
        points = sorted((c.edges, c.faithfulness) for c in circuits)
        ax.plot(*zip(*points, strict=True), "o-", label=name, alpha=0.85)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("edges kept")
    ax.set_ylabel("faithfulness (1 - metric / empty)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- experiments (notebook 07)


def paired_corruption(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A corrupted batch for `x`: each input paired with another input of the same batch."""
    if len(x) < 2:
        raise ValueError("a corrupted batch needs at least two inputs to pair")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    perm = torch.where(perm == torch.arange(len(x)), (perm + 1) % len(x), perm)
    return x[perm.to(x.device)]


def class_batches(
    x: torch.Tensor, y: torch.Tensor, label: int, n: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` clean inputs of class `label` and `n` corrupted inputs drawn from the other classes."""
    gen = torch.Generator().manual_seed(seed)
    mine, others = (y == label).nonzero().flatten().cpu(), (y != label).nonzero().flatten().cpu()
    if len(mine) == 0 or len(others) == 0:
        raise ValueError(f"class {label} needs examples of itself and of other classes in y")
    n = min(n, len(mine))
    pick = mine[torch.randperm(len(mine), generator=gen)[:n]]
    return x[pick], x[others[torch.randint(len(others), (n,), generator=gen)]]


def discover_outputs(
    models: dict[str, nn.Module],
    batches: dict[int, tuple[torch.Tensor, torch.Tensor]],
    tau: float,
    metric: str = "mse",
    ablation: str = "patch",
) -> dict[tuple[str, int], Circuit]:
    """ACDC for every network and every output: `batches[output] = (clean, corrupt)`."""
    return {
        (name, output): acdc(PatchingProblem(model, clean, corrupt, output, metric, ablation), tau)
        for name, model in models.items()
        for output, (clean, corrupt) in batches.items()
    }


def summarize(found: dict[tuple[str, int], Circuit]) -> dict[str, dict[str, float]]:
    """Per network: total edges, mean faithfulness, total discovery time, shared hidden neurons
    (summed over pairs of outputs; 0 means the output circuits are disjoint)."""
    table: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(n for n, _ in found):
        mine = [c for (n, _), c in found.items() if n == name]
        shared = sum(circuit_overlap(a, b) for k, a in enumerate(mine) for b in mine[k + 1 :])
        table[name] = {
            "edges": sum(c.edges for c in mine),
            "faithfulness": sum(c.faithfulness for c in mine) / len(mine),
            "seconds": sum(c.seconds for c in mine),
            "shared_neurons": shared,
        }
    return table


def format_summary(table: dict[str, dict[str, float]]) -> str:
    """`summarize`'s table as text, one network per row."""
    lines = [f"{'network':<18} {'edges':>7} {'faithfulness':>13} {'seconds':>8} {'shared neurons':>15}"]
    lines += [
        f"{name:<18} {row['edges']:>7d} {row['faithfulness']:>13.3f} {row['seconds']:>8.2f} "
        f"{row['shared_neurons']:>15d}"
        for name, row in table.items()
    ]
    return "\n".join(lines)


def draw_circuits(
    models: dict[str, SpatialMLP],
    found: dict[tuple[str, int], Circuit],
    output_names: Sequence[str] | None = None,
    size: float = 3.0,
):
    """A grid of circuits: one row per network, one column per output."""
    import matplotlib.pyplot as plt

    outputs = list(dict.fromkeys(o for _, o in found))
    fig, axes = plt.subplots(
        len(models), len(outputs), figsize=(size * len(outputs), size * 0.9 * len(models)), squeeze=False
    )
    for row, name in enumerate(models):
        for col, output in enumerate(outputs):
            circuit = found[(name, output)]
            label = output_names[output] if output_names else f"output {output}"
            draw_circuit(
                models[name],
                circuit,
                ax=axes[row, col],
                title=f"{name}, {label}: {circuit.edges} edges, F={circuit.faithfulness:.2f}",
            )
    fig.tight_layout()
    return fig

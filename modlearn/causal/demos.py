"""The two demos of notebook 08: the binary front-door model and the coloured digits."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..train import TrainConfig
from .generators import DCM, DCMConfig, MechanismGenerator, Variable
from .graph import CausalGraph
from .scm import TabularSCM
from .training import dcm_train_config, train_step


def front_door_scm(confounding: float = 0.8, mediation: float = 0.75) -> tuple[TabularSCM, CausalGraph]:
    """Binary front-door model: hidden `U -> X`, `U -> Y`; `X -> Z -> Y`. Graph `X -> Z -> Y, X <-> Y`.

    `P(X=1 | U=u)` is `confounding` when u = 1 (else 1 - it); `P(Z = X) = mediation`;
    `P(Y=1 | Z, U) = 0.1 + 0.3 Z + 0.5 U`.
    """
    if not (0.5 <= confounding < 1 and 0.5 <= mediation < 1):
        raise ValueError(f"confounding={confounding} and mediation={mediation} must lie in [0.5, 1)")

    def bern(p):
        return np.stack([1 - np.asarray(p), np.asarray(p)], axis=-1)

    cpts = {
        "U": bern(0.5),
        "X": bern([1 - confounding, confounding]),
        "Z": bern([1 - mediation, mediation]),
        "Y": bern(np.array([[0.1, 0.6], [0.4, 0.9]])),
    }
    scm = TabularSCM(
        {"U": 2, "X": 2, "Z": 2, "Y": 2}, {"X": ["U"], "Z": ["X"], "Y": ["Z", "U"]}, cpts, latent=["U"]
    )
    return scm, CausalGraph.parse("X -> Z, Z -> Y, X <-> Y")


COLOURS = np.array([[1.0, 0.15, 0.15], [0.15, 0.85, 0.15], [0.2, 0.35, 1.0]])
COLOUR_NAMES = ("red", "green", "blue")


def coloured_digits_scm(flip: float = 0.2, digits: int = 3) -> tuple[TabularSCM, CausalGraph]:
    """Semi-synthetic front-door model behind the coloured-digit images.

    Hidden `U`; `D` (a colour, 0..2) depends on U; the image shows digit `K` (uniform over
    `digits` classes, hidden) tinted with colour `C`, which equals D except with probability
    `flip`; the binary attribute `A` depends on the image's colour and on U. Observed graph:
    `D -> Image -> A, D <-> A` (C and K live inside the image).
    """
    if not (0 <= flip < 1 and 1 <= digits <= 10):
        raise ValueError(f"flip={flip} must lie in [0, 1) and digits={digits} in 1..10")
    p_d = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    p_c = np.full((3, 3), flip / 2) + np.eye(3) * (1 - 3 * flip / 2)
    p_a = np.array([[0.1, 0.6], [0.3, 0.8], [0.5, 0.95]])  # P(A=1 | C, U)
    cpts = {
        "U": np.array([0.5, 0.5]),
        "D": p_d,
        "C": p_c,
        "K": np.full(digits, 1 / digits),
        "A": np.stack([1 - p_a, p_a], axis=-1),
    }
    scm = TabularSCM(
        {"U": 2, "D": 3, "C": 3, "K": digits, "A": 2},
        {"D": ["U"], "C": ["D"], "A": ["C", "U"]},
        cpts,
        latent=["U", "C", "K"],
    )
    return scm, CausalGraph.parse("D -> Image, Image -> A, D <-> A")


def digit_pool(images: torch.Tensor, labels: torch.Tensor, digits: int = 3) -> list[torch.Tensor]:
    """Grey images `(n, 1, H, W)` (any scale) of classes `0..digits-1`, each rescaled to [0, 1]."""
    lo = images.amin(dim=(1, 2, 3), keepdim=True)
    hi = images.amax(dim=(1, 2, 3), keepdim=True)
    unit = (images - lo) / (hi - lo).clamp_min(1e-6)
    pool = [unit[labels == k] for k in range(digits)]
    if any(len(p) == 0 for p in pool):
        raise ValueError(f"every digit class 0..{digits - 1} needs at least one image")
    return pool


def render_coloured_digits(
    colour: torch.Tensor, digit: torch.Tensor, pool: Sequence[torch.Tensor], seed: int = 0
) -> torch.Tensor:
    """A random grey image of each `digit (n,)` from `pool`, tinted with `COLOURS[colour]`: `(n, 3, H, W)`."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(colour), 3, *pool[0].shape[-2:])
    for k, images in enumerate(pool):
        idx = (digit == k).nonzero().flatten()
        pick = torch.randint(len(images), (len(idx),), generator=gen)
        out[idx] = images[pick] * torch.as_tensor(COLOURS, dtype=torch.float32)[colour[idx]][:, :, None, None]
    return out


def coloured_digits_data(
    scm: TabularSCM, pool: Sequence[torch.Tensor], n: int, seed: int = 0, do: Mapping[str, int] | None = None
) -> dict[str, torch.Tensor]:
    """Observed samples `D, Image, A` (plus the hidden `C`, `K`, for reading out) of the coloured digits."""
    values = scm.sample(n, do=do, seed=seed, include_latent=True)
    values["Image"] = render_coloured_digits(values["C"], values["K"], pool, seed)
    return {k: values[k] for k in ("D", "Image", "A", "C", "K")}


def pretrained_image_generator(
    data: Mapping[str, torch.Tensor],
    variables: Sequence[Variable],
    config: DCMConfig,
    train: TrainConfig | None = None,
    cache: str | Path | None = None,
    graph: CausalGraph | None = None,
) -> MechanismGenerator:
    """A conditional image generator `Image | D` trained once on its own (WGAN-GP) and cached.

    `train` defaults to `dcm_train_config()`. The cache file is named by a hash of both configs,
    the variables and the data, under `cache` (default: `$XDG_CACHE_HOME/modlearn/causal`, i.e.
    `~/.cache/modlearn/causal`).
    """
    graph = graph or CausalGraph.parse("D -> Image")
    train = train or dcm_train_config()
    dcm = DCM(graph, variables, config)
    digest = hashlib.sha1(repr((asdict(config), asdict(train), variables, graph)).encode())
    for v in variables:
        digest.update(data[v.name].contiguous().numpy().tobytes())
    folder = (
        Path(cache)
        if cache
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modlearn" / "causal"
    )
    path = folder / f"image_generator_{digest.hexdigest()[:12]}.pt"
    image = next(v.name for v in variables if v.kind == "image")
    if path.exists():
        dcm.generators[image].load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        print(f"loaded the cached conditional image generator {path}")
    else:
        step = next(s for s in graph.training_steps() if image in s.generators)
        train_step(dcm, step, data, config, train)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dcm.generators[image].state_dict(), path)
        print(f"trained the conditional image generator once and cached it in {path}")
    return dcm.generators[image].cpu()

"""On CUDA, train the models of the series a few hundred steps with `fit`; print samples/s and peak memory.

Exits cleanly with a message where no GPU is present (CI never needs one).

    python benchmarks/gpu_check.py [--steps 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch

import modlearn as ml

STEPS = 300


def _digits28(n: int = 16384) -> ml.Dataset:
    """Digits upsampled to 28x28 and tiled to `n` training samples (MNIST-sized work, no download)."""
    ds = ml.load_dataset("digits", resize=28, verbose=False)
    reps = -(-n // len(ds.train))
    ds.train = ml.Split(ds.train.x.repeat(reps, 1, 1, 1)[:n], ds.train.y.repeat(reps)[:n])
    return ds


def model_check(kind: str, batch: int = 256) -> Callable[[int], int]:
    def run(steps: int) -> int:
        ds = _digits28()
        model = ml.make_model(kind, ds.input_shape)
        ml.fit(model, ds, ml.TrainConfig(epochs=100, max_steps=steps, batch_size=batch, progress=False))
        return steps * batch

    return run


def local_check(mode: str, kind: str, batch: int = 256) -> Callable[[int], int]:
    from modlearn import local

    def run(steps: int) -> int:
        ds = _digits28()
        model = (
            ml.make_model(kind, ds.input_shape, hidden=(256, 256, 256))
            if kind == "mlp"
            else ml.make_model(kind, ds.input_shape)
        )
        local.train_local(
            model,
            ds,
            local.LocalConfig(mode=mode),
            ml.TrainConfig(epochs=100, max_steps=steps, batch_size=batch, progress=False),
        )
        return steps * batch

    return run


def incubation_check(steps: int) -> int:
    from modlearn import incubation

    ds = _digits28()
    config = incubation.IncubationConfig(
        meta_steps=steps, incubation_steps=steps // 4, finetune_steps=steps // 4
    )
    meta, target = incubation.make_pair("vit", ds.input_shape)
    di = incubation.DeepIncubation(
        meta, target, ds.input_shape, config, incubation.paper_train(batch_size=256)
    )
    di.pretrain_meta(ds)
    di.incubate_all(ds, parallel=False)
    di.finetune(di.assemble(), ds)
    return (steps + 4 * (steps // 4) + steps // 4) * 256


def nemo_check(method: str, kind: str) -> Callable[[int], int]:
    from modlearn import nemo

    def run(steps: int) -> int:
        ds = _digits28()
        nemo.train_nemo(
            ml.make_model(kind, ds.input_shape),
            ds,
            nemo.ModularConfig(mode=method),
            ml.TrainConfig(epochs=100, max_steps=steps, batch_size=256, progress=False),
        )
        return steps * 256

    return run


def bimt_check(steps: int) -> int:
    from modlearn import bimt

    ds = _digits28()
    ds.train, ds.val = ml.Split(ds.train.x.flatten(1), ds.train.y), ml.Split(ds.val.x.flatten(1), ds.val.y)
    model = bimt.BioMLP([784, 100, 100, 10], geometry="2d")
    bimt.train_bimt(
        model,
        ds,
        bimt.BIMTConfig(steps=steps, swap_every=50, top_k=30, weight_factor=2.0),
        bimt.paper_train(ds, batch_size=256),
    )
    return steps * 256


def causal_check(steps: int) -> int:
    from modlearn import causal

    scm, graph = causal.front_door_scm()
    data = scm.sample(20000, seed=0)
    dcm = causal.DCM(graph, [causal.Variable(v, "discrete", 2) for v in "XZY"], causal.DCMConfig())
    causal.train_dcm(dcm, data, train=causal.dcm_train_config(max_steps=steps // 2, batch_size=200))
    return steps * 200


CHECKS: dict[str, Callable[[int], int]] = {
    "e2e mlp": model_check("mlp"),
    "e2e cnn": model_check("cnn"),
    "e2e vit": model_check("vit"),
    "local dgl cnn": local_check("dgl", "cnn"),
    "local greedy mlp": local_check("greedy", "mlp"),
    "local forward-forward mlp": local_check("ff", "mlp"),
    "deep incubation vit": incubation_check,
    "nemo mlp": nemo_check("nemo", "mlp"),
    "mwt cnn": nemo_check("mwt", "cnn"),
    "nemo vit": nemo_check("nemo", "vit"),
    "bimt 784-100-100-10": bimt_check,
    "modular-dcm front-door": causal_check,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--only", default="", help="run the checks whose name contains this text")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to check (the series runs on the CPU; CI never needs a GPU).")
        return 0
    print(
        f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {args.steps} steps per check\n"
    )
    failures = 0
    for name, check in CHECKS.items():
        if args.only not in name:
            continue
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            samples = check(args.steps)
        except Exception as err:  # report every check, then fail
            failures += 1
            print(f"{name:>24}: FAILED {type(err).__name__}: {err}")
            continue
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(
            f"{name:>24}: {samples / seconds:10.0f} samples/s  {seconds:6.1f} s  "
            f"peak {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

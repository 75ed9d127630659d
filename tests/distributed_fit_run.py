"""One `fit` on the digits, run by `tests/test_distributed.py` in one process or under `torchrun`.

    python tests/distributed_fit_run.py OUT [--steps N] [--checkpoint PATH] [--resume]

Rank 0 saves the trained weights and the history to `OUT/weights.pt` and `OUT/history.json`; every
rank appends its rank to `OUT/checkpoint-writers.txt` each time it writes a checkpoint, and saves the
step losses its history holds to `OUT/losses-<rank>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

import modlearn.train.loop as loop
from modlearn.data import load_dataset
from modlearn.models import make_model
from modlearn.train import TrainConfig, distributed, fit

GLOBAL_BATCH = 49  # odd: the 2 shares differ (25 + 24, and the last batch of each epoch 17 + 16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--checkpoint")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    out, rank = Path(args.out), int(os.environ.get("RANK", "0"))
    out.mkdir(parents=True, exist_ok=True)
    original = loop.save_checkpoint

    def recording_save(*a, **k):
        with open(out / "checkpoint-writers.txt", "a") as file:
            file.write(f"{rank}\n")
        original(*a, **k)

    loop.save_checkpoint = recording_save  # the name fit calls
    torch.set_num_threads(1)
    data = load_dataset("digits", seed=0, verbose=False)
    torch.manual_seed(0)
    model = make_model("mlp", data.input_shape, data.num_classes)
    config = TrainConfig(
        lr=3e-3,
        batch_size=GLOBAL_BATCH,
        max_steps=args.steps,
        epochs=None,
        seed=0,
        device="cpu",
        progress=False,
        checkpoint_path=args.checkpoint,
        resume=args.resume,
    )
    history = fit(model, data, config)
    (out / f"losses-{rank}.json").write_text(json.dumps(history.steps["loss"]))
    if rank == 0:
        torch.save(model.state_dict(), out / "weights.pt")
        (out / "history.json").write_text(json.dumps(history.epochs))
    distributed.leave()


if __name__ == "__main__":
    main()

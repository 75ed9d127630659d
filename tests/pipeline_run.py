"""DGL on the digits, in one process or pipelined on `torchrun` ranks; run by `tests/test_pipeline.py`.

    python tests/pipeline_run.py OUT [--steps N] [--pipelined]

Rank 0 (or the one process) saves the trained weights (`run.model`) to `OUT/weights.pt`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from modlearn import distributed
from modlearn.data import load_dataset
from modlearn.local import LocalConfig, train_dgl_pipelined, train_local
from modlearn.models import make_model
from modlearn.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--pipelined", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits", seed=0, verbose=False)
    torch.manual_seed(0)
    model = make_model("mlp", data.input_shape, data.num_classes, hidden=(args.width, args.width))
    train = TrainConfig(
        lr=2e-3, batch_size=49, max_steps=args.steps, epochs=None, seed=0, device="cpu", progress=False
    )
    config = LocalConfig(mode="dgl")
    given = {k: v.clone() for k, v in model.state_dict().items()}
    run = (train_dgl_pipelined if args.pipelined else train_local)(model, data, config, train)
    assert all(torch.equal(given[k], v) for k, v in model.state_dict().items()), "the given model changed"
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        torch.save(run.model.state_dict(), Path(args.out) / "weights.pt")
        print(f"seconds {run.seconds:.3f} steps {run.steps} histories {list(run.histories)}")
    distributed.leave()


if __name__ == "__main__":
    main()

"""One rank of `record_timelines`' pipelined run, started by `launch_ranks` as

    python -m modlearn.local.rank FOLDER

It reads `FOLDER/job.pt`, trains its module with `train_dgl_pipelined` and saves its timeline's marks
and the trained weights to `FOLDER/rank<k>.pt`. Not imported by `modlearn.local`, so that running it
as `__main__` finds no copy of it already imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from .. import distributed
from ..data import Dataset, Split
from ..train import TrainConfig
from .config import LocalConfig
from .pipeline import train_dgl_pipelined
from .timelines import Timeline, pipeline_mlp


def rank_main(folder: str) -> None:
    """Train this rank's module of the job in `folder`, then save its marks (and the weights)."""
    torch.set_num_threads(1)
    job = torch.load(Path(folder) / "job.pt", weights_only=True)
    x, y = job["x"], job["y"]
    data = Dataset("pipeline", Split(x, y), Split(x[:0], y[:0]), Split(x[:0], y[:0]), job["num_classes"], "")
    model = pipeline_mlp(data, job["hidden"], job["seed"])
    train = TrainConfig(
        lr=job["lr"], batch_size=job["batch_size"], max_steps=job["steps"], epochs=None, seed=job["seed"]
    )
    timeline = Timeline()
    config = LocalConfig(mode="dgl", num_modules=job["modules"])
    run = train_dgl_pipelined(
        model, data, config, replace(train, device="cpu", progress=False), timeline=timeline
    )
    rank = int(os.environ["RANK"])
    torch.save({"marks": timeline.marks, "weights": run.model.state_dict()}, Path(folder) / f"rank{rank}.pt")
    distributed.leave()


if __name__ == "__main__":
    rank_main(sys.argv[1])

"""A seeded run repeats: exactly at one thread count, and across thread counts with `deterministic=True`."""

import os
import subprocess
import sys

import pytest
import torch

import modlearn as ml

SCRIPT = """
import os, sys, torch, modlearn as ml
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cpus}])
ml.setup("smoke", seed=0, deterministic={deterministic}, verbose=False)
ds = ml.load_dataset("digits", verbose=False, max_train=256)
model = ml.make_model("cnn", ds.input_shape, 10)
ml.fit(model, ds, ml.TrainConfig(epochs=1, max_steps=8, batch_size=32, progress=False))
torch.save(torch.cat([p.detach().flatten() for p in model.parameters()]), sys.argv[1])
"""


def _train_in_subprocess(tmp_path, cpus: int, deterministic: bool) -> torch.Tensor:
    out = tmp_path / f"weights-{cpus}-{deterministic}.pt"
    code = SCRIPT.format(cpus=cpus, deterministic=deterministic)
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=300)
    return torch.load(out, weights_only=True)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to compare machines of 1 and 2")
def test_deterministic_setup_gives_identical_weights_on_one_or_two_cpus(tmp_path):
    one = _train_in_subprocess(tmp_path, cpus=1, deterministic=True)
    two = _train_in_subprocess(tmp_path, cpus=2, deterministic=True)
    assert torch.equal(one, two)


def test_setup_records_the_thread_count_and_deterministic_uses_one():
    try:
        chosen = ml.setup("smoke", seed=0, deterministic=True, verbose=False)
        assert chosen.threads == torch.get_num_threads() == 1
        assert ml.results.recorded()["torch_threads"] == 1
        assert ml.results.recorded()["budget"] == "smoke"
        assert torch.are_deterministic_algorithms_enabled()
        chosen = ml.setup("smoke", seed=0, threads=2, verbose=False)
        assert ml.results.recorded()["torch_threads"] == chosen.threads == 2
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_deterministic_setup_refuses_several_threads():
    with pytest.raises(ValueError, match="threads"):
        ml.setup("smoke", threads=2, deterministic=True, verbose=False)


def test_modlearn_threads_sets_the_default_thread_count(monkeypatch):
    """The series runner sets MODLEARN_THREADS for notebooks that share the machine; an explicit
    `threads=` still wins, and a value that is not a whole number >= 1 is refused by name."""
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv("MODLEARN_THREADS", "1")
        assert ml.setup("smoke", verbose=False).threads == torch.get_num_threads() == 1
        assert ml.setup("smoke", threads=2, verbose=False).threads == 2
        for wrong in ("0", "two", "-1"):
            monkeypatch.setenv("MODLEARN_THREADS", wrong)
            with pytest.raises(ValueError, match=f"MODLEARN_THREADS='{wrong}'.*whole number"):
                ml.setup("smoke", verbose=False)
    finally:
        torch.set_num_threads(threads)

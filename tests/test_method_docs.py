"""docs/method_api.md: the worked example (a new method in under 60 lines) runs as written and keeps
the Method API's promises (a `Run`, the given model unchanged, hooks reached, its own result typed)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import modlearn as ml

PAGE = Path(__file__).resolve().parents[1] / "docs" / "method_api.md"
TINY = ml.TrainConfig(epochs=None, max_steps=40, batch_size=64, lr=3e-3, progress=False, seed=0)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def example() -> dict:
    """The namespace the page's 'Add a method' block defines."""
    section = PAGE.read_text().split("## Add a method", 1)[1]
    code = python_blocks(section)[0]
    assert len(code.strip().splitlines()) < 60, "the worked example must stay under 60 lines"
    namespace: dict = {}
    exec(compile(code, str(PAGE), "exec"), namespace)
    return namespace


def test_the_worked_example_is_a_method_of_the_one_shape(example, one_torch_thread):
    data = ml.load_dataset("digits", verbose=False)
    torch.manual_seed(0)
    model = ml.make_model("mlp", data.input_shape, hidden=(32, 32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = []
    run = example["train_l1"](
        model, data, example["L1Config"](lam=1e-3), TINY, hooks=[lambda s: steps.append(s.step)]
    )
    assert isinstance(run, ml.Run) and run.model is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(steps) == run.history.num_steps == 40
    assert 0.0 <= run.extras.sparsity <= 1.0
    with pytest.raises(ValueError, match=r"hooks\[0\]"):
        example["train_l1"](model, data, None, TINY, hooks=[1])


def test_a_larger_lambda_gives_sparser_weights(example, one_torch_thread):
    """The defining property of L1: the penalty drives weights to zero, more so with a larger lambda."""
    data = ml.load_dataset("digits", verbose=False)
    torch.manual_seed(0)
    model = ml.make_model("mlp", data.input_shape, hidden=(32, 32))
    train = replace(TINY, max_steps=150, lr=1e-2)
    weak = example["train_l1"](model, data, example["L1Config"](lam=0.0, zero_below=1e-2), train)
    strong = example["train_l1"](model, data, example["L1Config"](lam=3e-3, zero_below=1e-2), train)
    assert strong.extras.sparsity > weak.extras.sparsity + 0.1, (weak.extras.sparsity, strong.extras.sparsity)


def test_the_page_is_in_the_site_navigation():
    index = (PAGE.parent / "index.md").read_text()
    assert "method_api" in index

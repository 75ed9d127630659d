"""Argument checks shared by every entry point: one clear `ValueError` instead of a deep traceback.

Every message has the same form, `owner(name=value): name must be <expected>; <what to do>`, e.g.
`TrainConfig(epochs=2.5): epochs must be a whole number >= 1; pass an int such as 3`.
Config dataclasses call `ConfigFields(self)` in `__post_init__`; `fit` and `evaluate` call
`check_fit_inputs` / `check_evaluate_inputs`, which look at the data with the model (`check_data`).
This module imports nothing from modlearn, so every module may use it: classes of higher layers
(`TrainConfig`, `Split`, `CrossEntropy`) are recognised by class name, subclasses included.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn


def _fail(
    owner: str,
    name: str,
    value: Any,
    expected: str,
    fix: str,
    shown: str | None = None,
    unknown: bool = False,
) -> ValueError:
    """`owner(name=value): name must be <expected>; <fix>`; `shown` replaces `repr(value)` (tensors);
    `unknown` says "unknown name" first (a name that is not among the choices)."""
    shown = repr(value) if shown is None else shown
    where = f"{owner}({name}={shown})" if owner else f"{name}={shown}"
    return ValueError(
        f"{where}: {'unknown ' + name + ', ' if unknown else ''}{name} must be {expected}; {fix}"
    )


def _fail_data(owner: str, name: str, shown: str, expected: str, fix: str) -> ValueError:
    """`_fail` for tensors and splits, shown by a short description instead of their repr."""
    return _fail(owner, name, None, expected, fix, shown=shown)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    owner: str = "",
    optional: bool = False,
) -> int | None:
    """`value` as an `int` (integral floats are accepted); bools, fractions and out-of-range values raise."""
    if value is None and optional:
        return None
    bounds = _range_text(minimum, maximum, False, False)
    expected = "a whole number" + (f" {bounds}" if bounds else "") + (" or None" if optional else "")
    finite = _is_number(value) and math.isfinite(value)
    if (
        finite
        and float(value).is_integer()
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        return int(value)
    example = math.ceil(value) if finite else (minimum if minimum is not None else 0)
    example = max(example, minimum) if minimum is not None else example
    example = min(example, maximum) if maximum is not None else example
    raise _fail(owner, name, value, expected, f"pass an int such as {example}")


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
    owner: str = "",
    optional: bool = False,
) -> float | None:
    """`value` as a `float` within the bounds; bools, strings, NaN (and inf when `finite`) raise."""
    if value is None and optional:
        return None
    bounds = _range_text(low, high, low_open, high_open)
    expected = (
        ("a finite number" if finite else "a number")
        + (f" {bounds}" if bounds else "")
        + (" or None" if optional else "")
    )
    if _is_number(value) and not math.isnan(value) and (math.isfinite(value) or not finite):
        inside = (low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high)
        )
        if inside:
            return float(value)
    fix = f"pass a number {bounds}" if bounds else "pass a plain finite number such as 0.1"
    raise _fail(owner, name, value, expected, fix)


def check_bool(name: str, value: Any, *, owner: str = "", optional: bool = False) -> bool | None:
    """`value` if it is `True` or `False` (or None when `optional`); 0/1 and strings raise."""
    if (value is None and optional) or isinstance(value, bool):
        return value
    raise _fail(
        owner,
        name,
        value,
        "True or False" + (" or None" if optional else ""),
        "pass a bool, not a string or number",
    )


def check_choice(name: str, value: Any, choices: Sequence[str], *, owner: str = "") -> str:
    """`value` if it is one of `choices`; otherwise the message lists them (and the closest one)."""
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    close = []
    if isinstance(value, str):
        close = [c for c in choices if c.lower() == value.lower()] or difflib.get_close_matches(
            value, choices, n=1
        )
    fix = f"did you mean {close[0]!r}?" if close else "pass one of those names"
    raise _fail(owner, name, value, f"one of {listed}", fix, unknown=True)


def _is_instance(value: Any, kind: type | str) -> bool:
    """`isinstance`, or for a class name: `value`'s class or one of its bases has that name."""
    if isinstance(kind, str):
        return any(cls.__name__ == kind for cls in type(value).__mro__)
    return isinstance(value, kind)


def check_type(
    name: str,
    value: Any,
    types: type | str | tuple[type | str, ...],
    *,
    owner: str = "",
    optional: bool = False,
    hint: str = "",
) -> Any:
    """`value` if it is an instance of `types` (or None when `optional`), else a `ValueError`.

    A type may be given by its class name (`"TrainConfig"`) where importing it would run upward."""
    kinds = types if isinstance(types, tuple) else (types,)
    if (value is None and optional) or any(_is_instance(value, kind) for kind in kinds):
        return value
    names = [kind if isinstance(kind, str) else kind.__name__ for kind in kinds]
    expected = " or ".join(names) + (" or None" if optional else "")
    article = "an" if expected[0].lower() in "aeiou" else "a"
    raise _fail(
        owner,
        name,
        value,
        f"{article} {expected}",
        hint or f"pass {article} {names[0]}",
        shown=f"<{type(value).__name__}>",
    )


def check_shape(name: str, value: Any, length: int | None = None, *, owner: str = "") -> tuple[int, ...]:
    """A shape: a sequence of whole numbers >= 1 (of `length` entries when given)."""
    expected = f"a tuple of {length or 'some'} positive ints"
    expected += " (channels, height, width), e.g. (1, 28, 28)" if length == 3 else ""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (Sequence, torch.Size))
        or (length is not None and len(value) != length)
        or len(value) == 0
    ):
        raise _fail(owner, name, value, expected, "pass the data's `input_shape`")
    return tuple(check_int(f"{name}[{i}]", v, 1, owner=owner) for i, v in enumerate(value))


DEVICES = ("auto", "cpu", "cuda", "mps")


def check_device(name: str, value: Any, *, owner: str = "") -> Any:
    """A device name (`"auto"`, `"cpu"`, `"cuda"`, `"cuda:1"`, `"mps"`) or a `torch.device`."""
    if isinstance(value, torch.device):
        return value
    base, _, index = value.partition(":") if isinstance(value, str) else (value, "", "")
    if base in DEVICES and (not index or index.isdigit()):
        return value
    listed = ", ".join(repr(d) for d in DEVICES)
    raise _fail(
        owner,
        name,
        value,
        f"one of {listed} (optionally with an index, e.g. 'cuda:0')",
        "use device='auto' to pick the best available one",
    )


class ConfigFields:
    """Checks a config dataclass's fields in place: `ConfigFields(self).integer("epochs", 1)`.

    Each method checks `getattr(config, name)` and stores the normalized value back (`3.0` -> `3`).
    """

    def __init__(self, config: Any) -> None:
        self.config, self.owner = config, type(config).__name__

    def _store(self, name: str, value: Any) -> Any:
        object.__setattr__(self.config, name, value)  # frozen dataclasses are checked too
        return value

    def integer(
        self, name: str, minimum: int | None = None, maximum: int | None = None, optional: bool = False
    ) -> int | None:
        value = check_int(
            name, getattr(self.config, name), minimum, maximum, owner=self.owner, optional=optional
        )
        return self._store(name, value)

    def number(
        self,
        name: str,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
        optional: bool = False,
    ) -> float | None:
        value = check_float(
            name,
            getattr(self.config, name),
            low,
            high,
            low_open=low_open,
            high_open=high_open,
            owner=self.owner,
            optional=optional,
        )
        return self._store(name, value)

    def boolean(self, name: str, optional: bool = False) -> bool | None:
        return check_bool(name, getattr(self.config, name), owner=self.owner, optional=optional)

    def choice(self, name: str, choices: Sequence[str]) -> str:
        return check_choice(name, getattr(self.config, name), choices, owner=self.owner)

    def each(self, name: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple:
        """Every entry of a tuple field through `check` (`check_int` or `check_float`)."""
        values = getattr(self.config, name)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise _fail(self.owner, name, values, "a tuple", "pass a tuple such as (1.0, 2.0)")
        checked = tuple(
            check(f"{name}[{i}]", v, *args, owner=self.owner, **kwargs) for i, v in enumerate(values)
        )
        return self._store(name, checked)


# --------------------------------------------------------------------------- data against the model

_REJECTED_DTYPES = {
    torch.uint8: "convert images with `x.float() / 255`",
    torch.bool: "convert with `x.float()`",
    torch.float64: "convert with `x.float()` (the model's parameters are float32)",
}


def _input_problem(model: nn.Module, x: torch.Tensor) -> str | None:
    """What to do about `x`'s dtype, or None when it suits `model` (float64 only for float64 models)."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if x.dtype == torch.float64 and param is not None and param.dtype == torch.float64:
        return None
    return _REJECTED_DTYPES.get(x.dtype)


_TASK_TARGETS = {"CrossEntropy": "classes", "MeanSquaredError": "values"}


def _task_kind(objective: Any) -> str | None:
    """What `objective.task` trains on: `"classes"` (cross-entropy), `"values"` (MSE), or None for
    objectives that read batches their own way. An objective may declare `targets = "classes"`."""
    task = getattr(objective, "task", objective)
    declared = getattr(task, "targets", None)
    if declared in _TASK_TARGETS.values():
        return declared
    return next((kind for base, kind in _TASK_TARGETS.items() if _is_instance(task, base)), None)


def check_tensor(owner: str, name: str, values: Any) -> torch.Tensor:
    """`values` if it is a tensor whose floating entries are all finite (NaN and inf raise)."""
    if not isinstance(values, torch.Tensor):
        raise _fail_data(
            owner, name, f"<{type(values).__name__}>", "a torch.Tensor", "wrap it with torch.as_tensor"
        )
    if values.is_floating_point() and len(values) and not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise _fail_data(
            owner,
            name,
            f"<{tuple(values.shape)} with {bad} NaN/inf>",
            "finite",
            "remove or impute the NaN/inf entries (e.g. torch.nan_to_num) before training",
        )
    return values


def _first_layer(model: nn.Module) -> str:
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
            return f"; its first layer is {module}"
    return ""


def _trial_forward(owner: str, name: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's output for `x[:1]`, in eval mode and without gradients; RNG, BatchNorm statistics
    and the modules' train/eval flags are left as they were."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device
    flags = [(module, module.training) for module in model.modules()]
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            return model(x[:1].to(device))
    except (RuntimeError, IndexError, ValueError, TypeError) as err:
        raise ValueError(
            f"{owner}({name}=<inputs of shape {tuple(x.shape)}, {x.dtype}>): {name}.x does not fit "
            f"{type(model).__name__}{_first_layer(model)}. "
            f"One input of shape {tuple(x.shape[1:])} gave: {err}; "
            "build the model for this data, e.g. ml.make_model(kind, data.input_shape, data.num_classes)"
        ) from err
    finally:
        for module, training in flags:
            module.training = training


def _check_classes(owner: str, name: str, y: torch.Tensor, out: torch.Tensor) -> None:
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise _fail_data(
            owner,
            name,
            f"<labels {y.dtype}>",
            "integer class indices for cross-entropy",
            "convert with `y.long()` (or use MeanSquaredError for regression targets)",
        )
    if y.ndim != 1:
        fix = "use `y.squeeze(1)`" if y.ndim == 2 and y.shape[1] == 1 else "pass one class index per sample"
        raise _fail_data(owner, name, f"<labels of shape {tuple(y.shape)}>", "of shape (n,)", fix)
    classes = out.shape[-1]
    low, high = int(y.min()), int(y.max())
    if out.ndim == 2 and (low < 0 or high >= classes):
        raise _fail_data(
            owner,
            name,
            f"<labels in [{low}, {high}]>",
            f"class indices in [0, {classes - 1}] (the model has {classes} outputs)",
            "build the model with num_classes="
            f"{max(high + 1, classes)}, or remap the labels to 0..{classes - 1}",
        )


def _check_values(owner: str, name: str, y: torch.Tensor, out: torch.Tensor) -> None:
    if not y.is_floating_point():
        raise _fail_data(
            owner,
            name,
            f"<targets {y.dtype}>",
            "float targets for mean squared error",
            "convert with `y.float()` (or use CrossEntropy for class labels)",
        )
    if tuple(y.shape[1:]) != tuple(out.shape[1:]):
        raise _fail_data(
            owner,
            name,
            f"<targets of shape {tuple(y.shape)}>",
            f"shaped (n, {', '.join(map(str, out.shape[1:]))}) like the model's output",
            "reshape the targets, e.g. `y.view(len(y), -1)`",
        )


def check_data(
    model: nn.Module,
    split: Any,
    objective: Any,
    name: str = "data",
    owner: str = "fit",
    allow_empty: bool = False,
) -> None:
    """Check `split` (a `Split`: `x: (n, ...)`, `y: (n, ...)`) against `model` before training.

    Always: a non-empty split of tensors, finite floats, no uint8/bool inputs (float64 only for a
    float64 model). For cross-entropy and MSE tasks also one trial forward pass (`x[:1]`, eval mode,
    no state change) and the targets: 1-D integer labels below the output width, or floats shaped
    like the output.
    """
    check_type(name, split, "Split", owner=owner, hint="pass a Dataset, a Split or a pair (x, y) of tensors")
    x = check_tensor(owner, f"{name}.x", split.x)
    y = check_tensor(owner, f"{name}.y", split.y)
    if len(x) == 0:
        if allow_empty:
            return
        raise _fail_data(
            owner, name, "<empty split>", "a split with at least one sample", "check the data loading"
        )
    problem = _input_problem(model, x)
    if problem:
        raise _fail_data(owner, f"{name}.x", f"<{x.dtype} inputs>", "float32 (or integer token ids)", problem)
    kind = _task_kind(objective)
    if kind is None:
        return
    out = _trial_forward(owner, name, model, x)
    (_check_classes if kind == "classes" else _check_values)(owner, f"{name}.y", y, out)


def check_fit_inputs(model: Any, config: Any, objective: Any, train: Any, val: Any | None) -> None:
    """`fit`'s arguments: the types, then the training (and validation) `Split` against the model."""
    check_type("model", model, nn.Module, owner="fit", hint="pass a torch.nn.Module, e.g. ml.make_model(...)")
    check_type("config", config, "TrainConfig", owner="fit", hint="pass ml.TrainConfig(...)")
    check_type(
        "objective", objective, "Objective", owner="fit", hint="pass an Objective, e.g. CrossEntropy()"
    )
    check_data(model, train, objective, "data")
    if val is not None:
        check_data(model, val, objective, "val", allow_empty=True)


def check_evaluate_inputs(model: Any, split: Any, objective: Any, batch_size: Any) -> None:
    """`evaluate`'s arguments: the model, the batch size, and the data against the model."""
    check_type("model", model, nn.Module, owner="evaluate", hint="pass a torch.nn.Module")
    check_int("batch_size", batch_size, 1, owner="evaluate")
    check_data(model, split, objective, "data", owner="evaluate")

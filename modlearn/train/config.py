"""`TrainConfig`: every setting of `fit` (optimizer, batch, budget, device, checkpoints), checked."""

from __future__ import annotations

from dataclasses import dataclass

from ..validate import ConfigFields, check_device, check_float

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class TrainConfig:
    """Settings of `fit`. Defaults: Adam, lr 1e-3, betas (0.9, 0.999), batch 128, bf16 autocast on CUDA.

    `channels_last=None` stores images and conv weights channels-last when the model has a
    `Conv2d` (faster convolutions on CPU and GPU; the same function); `False` keeps NCHW.
    `resume_strict` refuses a checkpoint written with other `RESUME_FIELDS` or another training-set
    size; `stop_on_nonfinite` ends the run with a `FloatingPointError` at the first NaN/inf loss.

    A budget in optimizer steps: `TrainConfig(epochs=None, max_steps=600)` trains exactly 600 steps,
    however large the training split (an epoch budget gives a small dataset only a few steps).
    """

    epochs: int | None = 5
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None
    max_steps: int | None = None
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    seed: int | None = 0
    progress: bool = True
    eval_batch_size: int = 2048
    checkpoint_path: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    channels_last: bool | None = None
    desc: str = "train"
    resume_strict: bool = True
    stop_on_nonfinite: bool = True

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("batch_size", "eval_batch_size", "checkpoint_every"):
            fields.integer(name, 1)
        fields.integer("epochs", 1, optional=True)
        fields.integer("max_steps", 1, optional=True)
        if self.epochs is None and self.max_steps is None:
            raise ValueError(
                "TrainConfig(epochs=None, max_steps=None): a budget in steps needs max_steps; "
                "pass max_steps=600 (say) or a number of epochs"
            )
        fields.integer("seed", 0, optional=True)
        fields.number("lr", 0, low_open=True)
        fields.number("weight_decay", 0)
        fields.number("momentum", 0, 1, high_open=True)
        fields.each("betas", check_float, 0, 1, high_open=True)
        if len(self.betas) != 2:
            raise ValueError(
                f"TrainConfig(betas={self.betas}): betas must be a pair (beta1, beta2) of Adam's "
                "decay rates; pass e.g. (0.9, 0.999)"
            )
        fields.number("grad_clip", 0, low_open=True, optional=True)
        fields.choice("optimizer", OPTIMIZERS)
        for name in ("amp", "compile", "progress", "resume", "resume_strict", "stop_on_nonfinite"):
            fields.boolean(name)
        fields.boolean("channels_last", optional=True)
        check_device("device", self.device, owner="TrainConfig")
        if self.resume and not self.checkpoint_path:
            raise ValueError(
                "TrainConfig(resume=True): resume needs a checkpoint_path to resume from; "
                "pass checkpoint_path='run.pt' or resume=False"
            )

    def num_epochs(self, steps_per_epoch: int) -> int:
        """The epochs a run spans: `epochs`, or as many as `max_steps` needs when `epochs` is None."""
        return self.epochs if self.epochs is not None else -(-self.max_steps // steps_per_epoch)

"""Every bad input to an entry point is answered by a `ValueError` that names the argument.

Table-driven: `(id, call, error type, substring of the message)`. The data checks of `fit` and
`evaluate` must also leave the model, BatchNorm statistics and the RNG untouched, and accept
what the notebooks legitimately pass (token ids, regression targets, float64 models).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import modlearn as ml
from modlearn import bimt, causal, circuits, cluster, incubation, local, nemo
from modlearn.data import Dataset, Split, modular_addition, symbolic_task
from modlearn.models import MLP, ModularTransformer
from modlearn.train import CrossEntropy, MeanSquaredError, Objective
from modlearn.validate import check_data

NAN, INF = math.nan, math.inf
SHAPE = (1, 8, 8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _xy(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, *SHAPE, generator=generator), torch.arange(n) % 10


def _dataset() -> Dataset:
    x, y = _xy(30)
    return Dataset(
        "tiny", Split(x[:20], y[:20]), Split(x[20:25], y[20:25]), Split(x[25:], y[25:]), 10, "test data"
    )


def _mlp(shape=SHAPE) -> MLP:
    return ml.make_model("mlp", shape, 10, hidden=(8,))


def _config(**kwargs) -> ml.TrainConfig:
    return ml.TrainConfig(epochs=1, progress=False, **kwargs)


def _fit(x=None, y=None, model=None, **kwargs):
    default_x, default_y = _xy()
    data = (default_x if x is None else x, default_y if y is None else y)
    return ml.fit(model or _mlp(), data, _config(), **kwargs)


def _with(values: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    values = values.clone()
    values[index] = value
    return values


def _evaluate(x=None, y=None, model=None, **kwargs):
    default_x, default_y = _xy()
    return ml.evaluate(
        model or _mlp(), (default_x if x is None else x, default_y if y is None else y), **kwargs
    )


def _problem() -> circuits.PatchingProblem:
    torch.manual_seed(0)
    return circuits.PatchingProblem(MLP(4, hidden=(3,), num_classes=2), torch.randn(4, 4), torch.randn(4, 4))


def _dcm() -> causal.DCM:
    _, graph = causal.front_door_scm()
    return causal.DCM(
        graph, [causal.Variable(v) for v in "XZY"], causal.DCMConfig(noise_dim=2, confounder_dim=2)
    )


class _DeclaresClasses(Objective):
    """A custom objective that declares class-index targets, so `fit` checks its labels."""

    targets = "classes"

    def __call__(self, model, batch):
        return CrossEntropy()(model, batch)


X, Y = _xy()
CASES = [
    # TrainConfig
    (
        "epochs-fraction",
        lambda: ml.TrainConfig(epochs=2.5),
        "epochs must be a whole number >= 1 or None; pass an int such as 3",
    ),
    ("epochs-zero", lambda: ml.TrainConfig(epochs=0), "epochs"),
    ("resume-strict-string", lambda: ml.TrainConfig(resume_strict="no"), "resume_strict"),
    ("stop-on-nonfinite-number", lambda: ml.TrainConfig(stop_on_nonfinite=2), "stop_on_nonfinite"),
    ("regularized-weight-nan", lambda: ml.Regularized(ml.CrossEntropy(), lambda m: m, NAN), "weight"),
    ("epochs-bool", lambda: ml.TrainConfig(epochs=True), "epochs"),
    ("epochs-string", lambda: ml.TrainConfig(epochs="3"), "epochs"),
    ("batch-size-zero", lambda: ml.TrainConfig(batch_size=0), "batch_size"),
    ("lr-nan", lambda: ml.TrainConfig(lr=NAN), "lr"),
    ("lr-zero", lambda: ml.TrainConfig(lr=0), "lr"),
    ("weight-decay-inf", lambda: ml.TrainConfig(weight_decay=INF), "weight_decay"),
    ("weight-decay-negative", lambda: ml.TrainConfig(weight_decay=-1e-4), "weight_decay"),
    ("momentum-nan", lambda: ml.TrainConfig(momentum=NAN), "momentum"),
    ("momentum-above-one", lambda: ml.TrainConfig(momentum=1.5), "momentum"),
    ("grad-clip-zero", lambda: ml.TrainConfig(grad_clip=0.0), "grad_clip"),
    ("max-steps-fraction", lambda: ml.TrainConfig(max_steps=1.5), "max_steps"),
    ("optimizer-typo", lambda: ml.TrainConfig(optimizer="adm"), "optimizer='adm'): unknown optimizer"),
    ("device-unknown", lambda: ml.TrainConfig(device="gpu"), "device must be one of 'auto', 'cpu'"),
    ("seed-string", lambda: ml.TrainConfig(seed="abc"), "seed must be a whole number"),
    ("amp-string", lambda: ml.TrainConfig(amp="yes"), "amp must be True or False"),
    ("channels-last-int", lambda: ml.TrainConfig(channels_last=1), "channels_last"),
    ("eval-batch-size-zero", lambda: ml.TrainConfig(eval_batch_size=0), "eval_batch_size"),
    ("resume-without-path", lambda: ml.TrainConfig(resume=True), "checkpoint_path"),
    # fit: the data against the model
    ("fit-config-empty-dict", lambda: ml.fit(_mlp(), _xy(), {}), "config"),
    ("fit-nan-inputs", lambda: _fit(x=_with(X, (0, 0, 0, 0), NAN)), "data.x must be finite"),
    ("fit-inf-inputs", lambda: _fit(x=_with(X, (3, 0, 1, 1), INF)), "data.x must be finite"),
    ("fit-labels-out-of-range", lambda: _fit(y=Y + 3), "data.y must be class indices in [0, 9]"),
    ("fit-negative-labels", lambda: _fit(y=Y - 1), "data.y must be class indices"),
    ("fit-28x28-model-on-8x8", lambda: _fit(model=_mlp((1, 28, 28))), "data.x does not fit MLP"),
    (
        "fit-vit-on-wrong-size",
        lambda: _fit(model=ml.make_model("vit", (1, 16, 16), 10, dim=8, depth=1)),
        "input of shape (1, 8, 8)",
    ),
    ("fit-uint8-inputs", lambda: _fit(x=(X.clamp(0, 1) * 255).to(torch.uint8)), "x.float() / 255"),
    ("fit-float64-inputs", lambda: _fit(x=X.double()), "data.x must be float32"),
    ("fit-float-labels", lambda: _fit(y=Y.float()), "data.y must be integer class indices"),
    ("fit-column-labels", lambda: _fit(y=Y[:, None]), "y.squeeze(1)"),
    ("fit-empty", lambda: _fit(x=X[:0], y=Y[:0]), "data must be a split with at least one sample"),
    ("fit-model-not-module", lambda: ml.fit("mlp", (X, Y), _config()), "model must be a Module"),
    ("fit-config-wrong-class", lambda: ml.fit(_mlp(), (X, Y), {"epochs": 1}), "config must be a TrainConfig"),
    (
        "fit-objective-wrong-class",
        lambda: _fit(objective=nn.CrossEntropyLoss()),
        "objective must be an Objective",
    ),
    ("fit-data-wrong-type", lambda: ml.fit(_mlp(), "digits", _config()), "data"),
    ("fit-nan-validation", lambda: _fit(val=Split(_with(X, (0, 0, 0, 0), NAN), Y)), "val.x must be finite"),
    (
        "fit-regression-nan-targets",
        lambda: _fit(y=_with(torch.zeros(16, 10), (2, 3), NAN), objective=MeanSquaredError()),
        "data.y must be finite",
    ),
    (
        "fit-regression-broadcast",
        lambda: _fit(y=torch.zeros(16), objective=MeanSquaredError()),
        "data.y must be shaped (n, 10)",
    ),
    (
        "fit-declared-class-targets",
        lambda: _fit(y=Y + 3, objective=_DeclaresClasses()),
        "data.y must be class",
    ),
    (
        "fit-regression-int-targets",
        lambda: _fit(y=Y, objective=MeanSquaredError()),
        "data.y must be float targets",
    ),
    # evaluate
    ("evaluate-labels-out-of-range", lambda: _evaluate(y=Y + 12), "data.y must be class indices"),
    ("evaluate-shape-mismatch", lambda: _evaluate(model=_mlp((1, 28, 28))), "data.x does not fit"),
    ("evaluate-batch-size-zero", lambda: _evaluate(batch_size=0), "batch_size"),
    ("evaluate-empty", lambda: _evaluate(x=X[:0], y=Y[:0]), "data must be a split with at least one sample"),
    ("evaluate-nan", lambda: _evaluate(x=_with(X, (1, 0, 2, 2), NAN)), "data.x must be finite"),
    ("evaluate-model-not-module", lambda: ml.evaluate(None, (X, Y)), "model must be a Module"),
    # make_model
    ("make-model-kind", lambda: ml.make_model("resnet", SHAPE), "kind must be one of 'cnn', 'mlp', 'vit'"),
    ("make-model-kind-case", lambda: ml.make_model("MLP", SHAPE), "did you mean 'mlp'"),
    ("make-model-flat-shape", lambda: ml.make_model("mlp", (64,)), "input_shape must be a tuple of 3"),
    ("make-model-fraction-shape", lambda: ml.make_model("mlp", (1, 8, 8.5)), "input_shape[2]"),
    ("make-model-string-shape", lambda: ml.make_model("mlp", "1x8x8"), "input_shape"),
    ("make-model-num-classes-zero", lambda: ml.make_model("mlp", SHAPE, 0), "num_classes"),
    ("make-model-num-classes-fraction", lambda: ml.make_model("mlp", SHAPE, 2.5), "num_classes"),
    (
        "make-model-unknown-setting",
        lambda: ml.make_model("cnn", SHAPE, hidden=(8,)),
        "hidden is not a setting",
    ),
    # setup
    ("setup-seed-string", lambda: ml.setup("smoke", seed="abc", verbose=False), "setup(seed='abc')"),
    ("setup-seed-fraction", lambda: ml.setup("smoke", seed=1.5, verbose=False), "seed"),
    ("setup-threads-zero", lambda: ml.setup("smoke", threads=0, verbose=False), "threads"),
    ("setup-threads-bool", lambda: ml.setup("smoke", threads=True, verbose=False), "threads"),
    ("setup-verbose-string", lambda: ml.setup("smoke", verbose="no"), "verbose"),
    # local
    ("local-mode", lambda: local.LocalConfig(mode="backprop"), "unknown mode"),
    ("local-aux-head", lambda: local.LocalConfig(aux_head="big"), "aux_head"),
    ("local-num-modules", lambda: local.LocalConfig(num_modules=0), "num_modules"),
    ("local-aux-hidden-fraction", lambda: local.LocalConfig(aux_hidden=2.5), "aux_hidden"),
    ("local-ff-theta-nan", lambda: local.LocalConfig(ff_theta=NAN), "ff_theta"),
    ("local-kernel-min-inf", lambda: local.LocalConfig(kernel_min=INF), "kernel_min"),
    ("train-local-data-tuple", lambda: local.train_local(_mlp(), (X, Y)), "data must be a Dataset"),
    (
        "train-local-config-class",
        lambda: local.train_local(_mlp(), _dataset(), ml.TrainConfig()),
        "config must be a LocalConfig",
    ),
    (
        "train-local-train-class",
        lambda: local.train_local(_mlp(), _dataset(), local.LocalConfig(), {}),
        "train must be a TrainConfig",
    ),
    # incubation
    ("incubation-stages-zero", lambda: incubation.IncubationConfig(stages=0), "stages"),
    (
        "incubation-min-lr-above-lr",
        lambda: incubation.DeepIncubation(_mlp(), _mlp(), SHAPE, incubation.IncubationConfig(min_lr=1e-2)),
        "min_lr",
    ),
    ("incubation-workers-fraction", lambda: incubation.IncubationConfig(workers=1.5), "workers"),
    (
        "incubation-grad-clip-zero",
        lambda: incubation.IncubationConfig(finetune_grad_clip=0),
        "finetune_grad_clip",
    ),
    (
        "deep-incubation-meta",
        lambda: incubation.DeepIncubation("vit", _mlp(), SHAPE),
        "meta must be a Module",
    ),
    (
        "deep-incubation-input-shape",
        lambda: incubation.DeepIncubation(_mlp(), _mlp(), (1, 0, 8)),
        "input_shape[1]",
    ),
    (
        "deep-incubation-config",
        lambda: incubation.DeepIncubation(_mlp(), _mlp(), SHAPE, ml.TrainConfig()),
        "config must be an IncubationConfig",
    ),
    # cluster
    ("cluster-weight-nan", lambda: cluster.ClusterConfig(lam=NAN), "ClusterConfig(lam=nan)"),
    ("cluster-k-one", lambda: cluster.ClusterConfig(k=1), "k must be a whole number >= 2"),
    ("cluster-k-fraction", lambda: cluster.ClusterConfig(k=2.5), "k"),
    ("cluster-recluster-zero", lambda: cluster.ClusterConfig(recluster_every=0), "recluster_every"),
    ("cluster-layers-string", lambda: cluster.ClusterConfig(layers="blocks.0.0"), "layers"),
    ("train-cluster-model", lambda: cluster.train_cluster("mlp", (X, Y)), "train_cluster(model=str): needs"),
    (
        "train-cluster-config",
        lambda: cluster.train_cluster(_mlp(), (X, Y), ml.TrainConfig()),
        "config must be a ClusterConfig",
    ),
    ("train-cluster-task", lambda: cluster.train_cluster(_mlp(), (X, Y), task="ce"), "task"),
    # nemo
    ("nemo-method", lambda: nemo.ModularConfig(mode="splitter"), "unknown mode"),
    ("nemo-alpha-nan", lambda: nemo.ModularConfig(alpha=NAN), "alpha"),
    ("nemo-tau-zero", lambda: nemo.ModularConfig(tau=0), "tau"),
    ("nemo-threshold", lambda: nemo.ModularConfig(threshold=1.5), "threshold"),
    (
        "train-nemo-model",
        lambda: nemo.train_nemo(nn.Linear(64, 10), (X, Y)),
        "train_nemo(model=Linear): needs",
    ),
    (
        "train-nemo-config",
        lambda: nemo.train_nemo(_mlp(), (X, Y), ml.TrainConfig()),
        "config must be a ModularConfig",
    ),
    # bimt
    ("bimt-steps-zero", lambda: bimt.BIMTConfig(steps=0), "steps"),
    ("bimt-lam-nan", lambda: bimt.BIMTConfig(lam=NAN), "lam"),
    ("bimt-mode", lambda: bimt.BIMTConfig(mode="l2"), "unknown mode"),
    ("bimt-reduction", lambda: bimt.BIMTConfig(reduction="avg"), "reduction"),
    ("bimt-factors-count", lambda: bimt.BIMTConfig(lam_factors=(1.0, 2.0)), "lam_factors"),
    ("bimt-boundary-above-one", lambda: bimt.BIMTConfig(lam_boundaries=(0.25, 1.5)), "lam_boundaries[1]"),
    ("bimt-boundaries-unsorted", lambda: bimt.BIMTConfig(lam_boundaries=(0.75, 0.25)), "lam_boundaries"),
    (
        "train-bimt-model",
        lambda: bimt.train_bimt(_mlp(), symbolic_task("independence", 8, 8)),
        "bimt.from_mlp",
    ),
    (
        "train-bimt-train",
        lambda: bimt.train_bimt(bimt.BioMLP([4, 6, 2]), symbolic_task("independence", 8, 8), None, {}),
        "train must be a TrainConfig",
    ),
    ("train-bimt-data", lambda: bimt.train_bimt(bimt.BioMLP([4, 6, 2]), (X, Y)), "data must be a Dataset"),
    # circuits
    ("acdc-config-tau-nan", lambda: circuits.ACDCConfig(tau=NAN), "tau"),
    ("acdc-config-metric", lambda: circuits.ACDCConfig(metric="l2"), "unknown metric"),
    ("acdc-config-ablation", lambda: circuits.ACDCConfig(ablation="resample"), "unknown ablation"),
    ("acdc-problem", lambda: circuits.acdc("problem"), "problem must be a PatchingProblem"),
    ("acdc-tau-negative", lambda: circuits.acdc(_problem(), tau=-0.1), "tau"),
    ("discover-model", lambda: circuits.discover("mlp", torch.randn(4, 4)), "model must be a Module"),
    (
        "discover-clean-nan",
        lambda: circuits.discover(MLP(4, hidden=(3,), num_classes=2), _with(torch.randn(4, 4), (0, 0), NAN)),
        "clean must be finite",
    ),
    # causal
    ("dcm-gp-weight-nan", lambda: causal.DCMConfig(gp_weight=NAN), "DCMConfig(gp_weight=nan)"),
    ("dcm-critic-steps-fraction", lambda: causal.DCMConfig(critic_steps=2.5), "critic_steps"),
    ("dcm-hidden-zero", lambda: causal.DCMConfig(hidden=(0,)), "hidden[0]"),
    ("train-betas-pair", lambda: ml.TrainConfig(betas=(0.5,)), "betas must be a pair"),
    ("train-betas-one", lambda: ml.TrainConfig(betas=(0.9, 1.0)), "betas[1]"),
    ("dcm-tau-floor", lambda: causal.DCMConfig(tau_floor=2.0), "tau_floor"),
    ("variable-size-fraction", lambda: causal.Variable("X", size=2.5), "size"),
    ("variable-kind", lambda: causal.Variable("X", kind="categorical"), "unknown kind"),
    ("variable-name", lambda: causal.Variable(3), "name must be a str"),
    ("causal-train-dcm-dcm", lambda: causal.train_dcm("dcm", {}), "train_dcm(model=str): needs a causal.DCM"),
    (
        "causal-train-dcm-data",
        lambda: causal.train_dcm(_dcm(), [1, 2], mode="joint"),
        "data must be a Mapping",
    ),
    (
        "causal-train-dcm-config",
        lambda: causal.train_dcm(_dcm(), {}, ml.TrainConfig()),
        "config must be a DCMConfig",
    ),
    (
        "causal-train-dcm-train",
        lambda: causal.train_dcm(_dcm(), {}, None, causal.DCMConfig()),
        "train must be a TrainConfig",
    ),
    ("causal-train-dcm-mode", lambda: causal.train_dcm(_dcm(), {}, mode="jointly"), "unknown mode"),
]


@pytest.mark.parametrize(
    "call, error, needle", [(c, ValueError, n) for _, c, n in CASES], ids=[case_id for case_id, _, _ in CASES]
)
def test_bad_input_gets_a_clear_error(call, error, needle):
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)


def test_there_are_enough_cases():
    assert len(CASES) >= 60
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


# --------------------------------------------------------------------------- what the checks leave alone


class _Noise(nn.Module):
    """Adds fresh Gaussian noise in every forward pass (draws from the global RNG, even in eval mode)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * torch.randn_like(x)


def test_the_data_check_changes_no_state():
    torch.manual_seed(0)
    model = nn.Sequential(_Noise(), ml.make_model("cnn", SHAPE, 10, channels=(4,))).train()
    model[1].blocks[0][0].eval()  # a mixed train/eval state must come back as it was
    flags = [m.training for m in model.modules()]
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_data(model, Split(X, Y), CrossEntropy())
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_legitimate_inputs_pass():
    check = check_data
    tokens = modular_addition(p=5)
    check(ModularTransformer(p=5, dim=8, depth=1, heads=2), tokens.train, CrossEntropy())
    task = symbolic_task("independence", 8, 8)
    check(bimt.BioMLP([4, 6, 2]), task.train, MeanSquaredError())
    check(MLP(64, hidden=(4,)).double(), Split(X.double(), Y), CrossEntropy())
    ml.fit(_mlp(), (X, Y), _config())
    assert ml.TrainConfig(epochs=3.0).epochs == 3 and isinstance(ml.TrainConfig(epochs=3.0).epochs, int)

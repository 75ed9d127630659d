"""Training without end-to-end backprop: greedy layer-wise, decoupled greedy (DGL), kernel proxy,
Forward-Forward.

The map (Duan & Principe, "Training Deep Architectures Without End-to-End Backpropagation", 2021/2022):

- **end-to-end (E2E)**: one global forward pass, one loss, one global backward pass;
- **weakly modular**: no global backward pass, but each step still runs a forward pass through
  every module (DGL, Belilovsky et al. 2020; Forward-Forward, Hinton 2022, as trained here);
- **fully modular**: each module is trained on its own and frozen; the next one trains on its
  cached outputs (sequential greedy layer-wise training; the authors' kernel proxy method, kerNET).

`train_local(model, data, LocalConfig(mode=...))` cuts a copy of `model` (a `BlockModel`, e.g.
`ml.make_model("mlp", ...)`, or your own plain `nn.Sequential`) into `K` modules along its blocks;
module k gets an auxiliary head, the last module uses the model's own head. Everything trains with
the one loop, `modlearn.train.fit`. Introduced in `tutorials/02_local_training.ipynb`.

One concern per file:

- `config`: `LocalConfig`, the modes; `net`: `LocalNet` (the model cut into modules) and its heads;
- `dgl`, `kernel`, `ff`: each method's objective (and network, where it needs its own);
- `train`: `train_local`, `LocalExtras`, one trainer per mode; `memory`: activation bytes per step;
- `metrics`: accuracy by depth, the results table, seed spread; `figures`: notebook 02's pictures;
- `pipeline`: DGL with module k on `torchrun` rank k; `timelines`: which module works when;
  `launch` and `rank`: the rank processes `record_timelines` starts.
"""

from ..models import split_blocks
from .config import HEADS, MODE_NAMES, MODES, LocalConfig
from .dgl import DecoupledObjective, decoupled_gradients
from .ff import ForwardForwardNet, ForwardForwardObjective, ff_layer_loss, goodness
from .figures import plot_module_accuracies, plot_sweep, plot_taxonomy
from .kernel import (
    KernelAlignmentObjective,
    UnitVectors,
    as_vectors,
    kernel_alignment,
    kernel_classifier,
    kernel_modules,
)
from .launch import launch_ranks
from .memory import SavedTensorMeter, activation_bytes, step_activation_bytes
from .metrics import (
    compare_seeds,
    format_comparison,
    measure,
    module_accuracies,
    seconds_per_step,
    sweep_modules,
)
from .net import LocalNet, local_net, make_aux_head, stage_output_shapes
from .pipeline import PipelineModule, PipelineStageObjective, train_dgl_pipelined
from .timelines import (
    TIMED_MODES,
    PipelineTimes,
    Timeline,
    WatchModules,
    mark_modules,
    modules_at_work_together,
    pipeline_mlp,
    plot_timelines,
    record_timelines,
)
from .train import LocalExtras, fit_on_frozen, train_local, train_modes

__all__ = [
    "HEADS",
    "MODES",
    "MODE_NAMES",
    "TIMED_MODES",
    "DecoupledObjective",
    "ForwardForwardNet",
    "ForwardForwardObjective",
    "KernelAlignmentObjective",
    "LocalConfig",
    "LocalExtras",
    "LocalNet",
    "PipelineModule",
    "PipelineStageObjective",
    "PipelineTimes",
    "SavedTensorMeter",
    "Timeline",
    "UnitVectors",
    "WatchModules",
    "activation_bytes",
    "as_vectors",
    "compare_seeds",
    "decoupled_gradients",
    "ff_layer_loss",
    "fit_on_frozen",
    "format_comparison",
    "goodness",
    "kernel_alignment",
    "kernel_classifier",
    "kernel_modules",
    "launch_ranks",
    "local_net",
    "make_aux_head",
    "mark_modules",
    "measure",
    "module_accuracies",
    "modules_at_work_together",
    "pipeline_mlp",
    "plot_module_accuracies",
    "plot_sweep",
    "plot_taxonomy",
    "plot_timelines",
    "record_timelines",
    "seconds_per_step",
    "split_blocks",
    "stage_output_shapes",
    "step_activation_bytes",
    "sweep_modules",
    "train_dgl_pipelined",
    "train_local",
    "train_modes",
]

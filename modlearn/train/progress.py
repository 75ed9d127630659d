"""`fit`'s progress bar over optimizer steps: text in a terminal, a widget in a notebook that turns
into one line of text when it closes (so a saved notebook holds no orphaned widget)."""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

from .config import TrainConfig


def show_progress(config: TrainConfig) -> bool:
    """`config.progress`, unless the environment sets `TQDM_DISABLE` (as headless runs of the series do:
    nobody watches their bars)."""
    return config.progress and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


class _NotebookBar(notebook_tqdm):
    """tqdm's notebook widget, replaced on close by one line of text.

    A closed widget leaves its view in the cell's output but not its state, so a saved and reopened
    notebook would show "Error displaying widget: model not found". Shown through a display handle, the
    bar's output is overwritten with a plain summary when it closes, stopped early or not.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, display=False, **kwargs)
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)

    def close(self) -> None:
        if self.disable or self._handle is None:
            return super().close()
        done = self.n
        super().close()
        stopped = "" if not self.total or done >= self.total else " (stopped early)"
        elapsed = self.format_interval(self.format_dict["elapsed"])
        summary = f"{self.desc or 'steps'}: {done}/{self.total} optimizer steps in {elapsed}{stopped}"
        self._handle.update({"text/plain": summary}, raw=True)
        self._handle = None


def progress_bar(total: int, initial: int, desc: str | None, disable: bool) -> tqdm:
    """A progress bar over optimizer steps: tqdm's text bar in a terminal; in a notebook a widget that
    turns into one line of text when it closes, so a saved notebook holds no orphaned widget."""
    cls = _NotebookBar if issubclass(tqdm, notebook_tqdm) else tqdm
    return cls(total=total, initial=initial, desc=desc, disable=disable, leave=False, dynamic_ncols=True)

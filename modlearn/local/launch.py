"""Start K rank processes on this machine as `torchrun --standalone` would, without its launcher."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def launch_ranks(world: int, command: list[str], timeout_s: float = 3600) -> None:
    """Run `command` as `world` ranks on this machine, as `torchrun --standalone` would, but without
    its launcher process (a second PyTorch in memory): each rank gets `RANK`, `WORLD_SIZE`,
    `LOCAL_RANK` and a free local port to meet on, and 1 OpenMP thread. Raises `RuntimeError` with
    the ranks' output when one fails (the others are stopped)."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    meet = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(world)}
    env = {**os.environ, **meet, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(world)]
    ranks = [
        subprocess.Popen(
            command, env={**env, "RANK": str(k), "LOCAL_RANK": str(k)}, stdout=log, stderr=subprocess.STDOUT
        )
        for k, log in enumerate(logs)
    ]
    try:
        codes = _wait_all(ranks, time.monotonic() + timeout_s)
        if any(code != 0 for code in codes):  # None: still running at the deadline
            output = []
            for k, log in enumerate(logs):
                log.seek(0)
                output.append(f"--- rank {k} (exit {codes[k]}):\n{log.read()[-3000:]}")
            raise RuntimeError(f"record_timelines: the {world} pipelined ranks failed:\n" + "\n".join(output))
    finally:
        for rank, log in zip(ranks, logs, strict=True):
            rank.kill()
            rank.wait()
            log.close()


def _wait_all(ranks: list[subprocess.Popen], deadline: float) -> list[int | None]:
    """Each rank's exit code; stops waiting when one fails (the others would wait for it) or at the
    deadline (None for those still running)."""
    while time.monotonic() < deadline:
        codes = [rank.poll() for rank in ranks]
        if all(code is not None for code in codes) or any(code for code in codes):
            return codes
        time.sleep(0.05)
    return [rank.poll() for rank in ranks]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

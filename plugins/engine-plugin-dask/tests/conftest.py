"""A real Dask cluster for the tests: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (separate processes started from the command line, not a
LocalCluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.testing.services import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = Path(__file__).resolve().parents[1]


def dask_command() -> str:
    """The ``dask`` command of this environment (installed with ``distributed``)."""
    path = Path(sys.executable).with_name("dask")
    if not path.exists():
        pytest.fail(f"{path} is missing: pip install -e '.[test]' installs distributed")
    return str(path)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scheduler's address, ``tcp://127.0.0.1:PORT``, with two workers connected."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    # the workers import the tests' helper plugins and this plugin's source, as the
    # machines of a real cluster would have them installed
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(PLUGIN)])
    env["ENGINE_STRICT_TRANSITIONS"] = "1"
    common = {"env": env, "cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask_command(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        **common,  # type: ignore[call-overload]
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        for _ in range(2):
            workers.append(
                subprocess.Popen(
                    [
                        dask_command(),
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--local-directory",
                        str(folder),
                    ],
                    **common,  # type: ignore[call-overload]
                )
            )
        with Client(address, timeout=30) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in [*workers, scheduler]:
            proc.terminate()
        for proc in [*workers, scheduler]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

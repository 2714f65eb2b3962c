"""``pip install`` the plugin into an environment that has the engine: a paper run
of examples/paper.toml, unchanged, serves /metrics; ``pip uninstall`` removes it.

The environment is a fresh virtualenv layered over the test interpreter's site
packages (so the engine and prometheus_client are found without a download);
the plugin is installed into and uninstalled from that virtualenv only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.testing.services import wait_for_http
from engine.testing.venv import overlay_venv

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]
PAPER = ROOT / "examples" / "paper.toml"
DEFAULT = ("127.0.0.1", 9464)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv (no pip of its own) that sees this interpreter's packages."""
    root = tmp_path_factory.mktemp("env")
    overlay_venv(root)
    return root


def pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args],
        check=True,
        capture_output=True,
        text=True,
    )


def engine(venv: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "engine", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def plugins(venv: Path) -> dict[str, dict[str, object]]:
    out = engine(venv, "plugins", "--json").communicate(timeout=60)[0]
    return {p["name"]: p for p in json.loads(out)}


def listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def test_install_serves_metrics_and_uninstall_removes_them(venv: Path) -> None:
    if listening(DEFAULT):
        pytest.fail(f"port {DEFAULT[1]} is taken on this machine; this test needs it free")
    pip(venv, "install", "--no-build-isolation", "--quiet", str(PLUGIN))
    listed = plugins(venv)
    assert listed["prometheus"]["distribution"] == "engine-plugin-prometheus"
    assert listed["prometheus"]["status"] == "loaded"

    run = engine(venv, "run", str(PAPER), "--paper", "--speed", "5")
    try:
        text = wait_for_http(f"http://{DEFAULT[0]}:{DEFAULT[1]}/metrics", timeout=60)
        deadline = time.monotonic() + 60
        while 'engine_orders_total{state="filled"}' not in text:  # the first trade
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
            text = wait_for_http(f"http://{DEFAULT[0]}:{DEFAULT[1]}/metrics")
        assert "# TYPE engine_equity gauge" in text
        assert "# TYPE engine_orders_total counter" in text
        with urllib.request.urlopen(f"http://{DEFAULT[0]}:{DEFAULT[1]}/health") as reply:
            assert b'"status": "ok"' in reply.read()
    finally:
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "paper report" in out

    pip(venv, "uninstall", "--yes", "--quiet", "engine-plugin-prometheus")
    assert "prometheus" not in plugins(venv)
    run = engine(venv, "run", str(PAPER), "--paper", "--speed", "5", "--max-bars", "12")
    seen_open = False
    while run.poll() is None:
        seen_open = seen_open or listening(DEFAULT)
        time.sleep(0.05)
    out, err = run.communicate()
    assert run.returncode == 0, err
    assert "paper report" in out
    assert re.search(r"│ bars +│ +12 │", out), out
    assert not seen_open

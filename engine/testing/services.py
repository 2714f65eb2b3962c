"""Real local services for integration tests: find (or install) a server binary,
pick a free port, wait until it answers.

A test that needs a server calls :func:`service_binary`. When the binary is
missing it is installed with ``apt-get`` if this is a Debian-like machine and we
are root; otherwise the test is skipped with the reason, or fails when
``ENGINE_REQUIRE_SERVICES=1`` (CI sets it: there a missing server is an error,
never a silent skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

__all__ = ["free_port", "service_binary", "wait_for_http", "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _apt_install(package: str) -> str:
    """Install ``package`` with apt-get (refreshing the lists once if needed); the
    error text, or ``""`` on success."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root on a machine with apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    return "" if done.returncode == 0 else done.stderr.strip()[-500:]


def service_binary(name: str, apt_package: str) -> str:
    """The path of ``name``; installs ``apt_package`` when missing and possible,
    else skips (or fails under ``ENGINE_REQUIRE_SERVICES=1``)."""
    path = shutil.which(name)
    if path is None:
        why = _apt_install(apt_package)
        path = shutil.which(name)
        if path is None:
            message = (
                f"{name} is not installed and could not be installed ({why});"
                f" install it with: apt-get install -y {apt_package}"
            )
            if os.environ.get("ENGINE_REQUIRE_SERVICES") == "1":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    return path


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def wait_for_http(url: str, timeout: float = 30.0) -> str:
    """Wait until ``url`` answers 200; returns the body."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return str(reply.read().decode())
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 after {timeout}s") from None
            time.sleep(0.1)

"""Logging set-up: one sink, text or JSON lines, stdlib logging routed into loguru."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

SCRIPT = """
import logging, sys
from loguru import logger
from engine.telemetry import configure_logging
configure_logging("INFO", json={json})
logger.debug("hidden")
logger.info("visible {{}}", 42)
logging.getLogger("somelib").warning("from the standard library")
secret = "s3cr3t-value"
try:
    1 / 0
except ZeroDivisionError:
    logger.exception("boom")
"""


def run(json_lines: bool) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json=json_lines)],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stderr


def test_text_logs_honour_the_level_and_intercept_stdlib_logging() -> None:
    err = run(json_lines=False)
    assert "hidden" not in err
    assert "visible 42" in err
    assert "from the standard library" in err
    # diagnose is off outside debugging: local variables (secrets) are not printed
    assert "ZeroDivisionError" in err and "s3cr3t-value" not in err


def test_json_lines() -> None:
    records = [
        json.loads(line) for line in run(json_lines=True).splitlines() if line.startswith("{")
    ]
    messages = [r["record"]["message"] for r in records]
    assert "visible 42" in messages and "from the standard library" in messages
    assert all("s3cr3t-value" not in r["text"] for r in records)


def test_the_library_adds_no_sink_at_import() -> None:
    before = logging.getLogger().handlers[:]
    import engine  # noqa: F401

    assert logging.getLogger().handlers == before


REDACT = """
from loguru import logger
from engine.telemetry import configure_logging, secrets_of
from engine.config import Secret
import attrs

@attrs.frozen
class Venue:
    api_key: Secret
    name: str = "x"

configure_logging("INFO", json={json}, secrets=secrets_of([Venue(Secret("tok-123456"))]))
logger.bind(header="Bearer tok-123456").info("connecting with key tok-123456")
"""


def test_secrets_are_redacted_in_messages_and_extras() -> None:
    for json_lines in (False, True):
        err = subprocess.run(
            [sys.executable, "-c", REDACT.format(json=json_lines)],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        assert "tok-123456" not in err
        assert "connecting with key ***" in err
        if json_lines:
            (record,) = [
                json.loads(line)["record"] for line in err.splitlines() if line.startswith("{")
            ]
            assert record["extra"]["header"] == "Bearer ***"

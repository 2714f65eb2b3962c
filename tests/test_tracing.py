"""One order's correlation id, from its bar to its fill, in a JSON log."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import Engine

CONFIG = """
[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 400

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20

[[guards]]
type = "max_position"
limit = "0.5"

[logging]
level = "DEBUG"
json = true
file = "{log}"
trace_orders = true
"""


def test_a_fills_correlation_id_is_on_its_bar_intent_decision_submit_and_fill_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "engine.jsonl"
    config = tmp_path / "trace.toml"
    config.write_text(CONFIG.format(log=log))
    engine = str(Path(sys.executable).with_name("engine"))
    subprocess.run(
        [engine, "backtest", str(config), "--no-progress"], check=True, capture_output=True
    )
    records = [json.loads(line)["record"] for line in log.read_text().splitlines()]
    events = [
        (r["extra"]["cid"], r["extra"]["event"], r["extra"])
        for r in records
        if "event" in r["extra"]
    ]
    fills = [e for e in events if e[1] == "fill"]
    assert fills
    cid = fills[0][0]
    path = [(event, extra) for c, event, extra in events if c == cid]
    assert [event for event, _ in path] == ["bar", "intent", "decision", "submit", "fill"]
    decision = path[2][1]
    assert decision["outcome"] == "reduced"  # 1 asked, max_position 0.5: reduced
    assert path[4][1]["quantity"] == "0.500" and path[4][1]["client_id"] == decision["client_id"]


def test_without_tracing_the_order_path_is_untouched(make_engine: Callable[..., Engine]) -> None:
    import asyncio

    eng = make_engine()
    run: Any = asyncio.run(eng._build("backtest"))
    assert "submit" not in vars(run.kernel) and "order_filled" not in vars(run.kernel)

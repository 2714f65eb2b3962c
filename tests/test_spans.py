"""Order tracing spans: one trace per intent, OTLP-shaped, deterministic, timed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from engine.results import RunResult
from engine.spans import Span


@pytest.fixture
def traced(make_engine: Callable[..., Engine], base_config: dict[str, Any]) -> RunResult:
    base_config["logging"] = {"trace_orders": True}
    base_config["guards"] = [{"type": "max_position", "limit": "0.5"}]
    base_config["filters"] = [
        {
            "type": "trading_hours",
            "sessions": ["00:00-12:00"],
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        }
    ]
    return make_engine(base_config).backtest_sync()


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def test_each_filled_order_is_one_trace_intent_to_fill(traced: RunResult) -> None:
    traces = by_trace(traced.spans)
    filled = [o for o in traced.orders.values() if o.state.value == "filled"]
    assert filled and traced.denials  # the filter denies half the day
    for order in filled:
        spans = {s.name: s for s in traces[_trace_of(traced, order.client_id)]}
        root = spans["order"]
        assert set(spans) == {"order", "decision", "submit", "ack", "fill"}
        assert root.parent_id == "" and root.status == "ok"
        assert root.attribute("client_id") == order.client_id
        assert root.attribute("state") == "filled"
        for name in ("decision", "submit", "ack", "fill"):
            assert spans[name].parent_id == root.span_id
            assert spans[name].trace_id == root.trace_id
        assert spans["decision"].start_ns == root.start_ns == order.created_ts
        assert spans["submit"].start_ns == spans["decision"].end_ns
        assert spans["ack"].start_ns == spans["submit"].end_ns
        fill = next(f for f in traced.fill_records if f.client_id == order.client_id)
        assert spans["fill"].end_ns == fill.ts == root.end_ns
        # buys ask 1 and max_position lets 0.5 through; sells close the 0.5
        expected = "reduced" if order.intent.side.value == "buy" else "allowed"
        assert spans["decision"].attribute("outcome") == expected
        assert spans["fill"].attribute("quantity") == "0.500"
    assert len({s.span_id for s in traced.spans}) == len(traced.spans)  # ids unique


def test_a_denied_intent_is_an_error_trace(traced: RunResult) -> None:
    traces = by_trace(traced.spans)
    denial = traced.denials[0]
    spans = {s.name: s for s in traces[_trace_of(traced, denial.client_id)]}
    assert set(spans) == {"order", "decision"}
    assert spans["order"].status == "error"
    assert spans["order"].message == f"denied: {denial.reason}"
    assert spans["order"].attribute("state") == "denied"
    assert spans["decision"].status == "error" and spans["decision"].message == denial.reason


def test_span_durations_go_to_histograms(traced: RunResult) -> None:
    counts = Counter(s.name for s in traced.spans)
    hist = {r.label("span"): r for r in traced.metrics if r.name == "engine_order_span_seconds"}
    assert {name: hist[name].count for name in counts} == dict(counts)
    assert hist["fill"].value == pytest.approx(
        sum(s.duration_s for s in traced.spans if s.name == "fill")
    )
    checks = {
        (r.label("stage"), r.label("check")): r.count
        for r in traced.metrics
        if r.name == "engine_pipeline_check_seconds"
    }
    intents = counts["order"]
    assert checks[("filter", "trading_hours")] == intents  # every intent met the filter
    assert checks[("guard", "max_position")] == intents - len(traced.denials)


def test_ids_are_deterministic(
    traced: RunResult, make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    base_config["logging"] = {"trace_orders": True}
    again = make_engine(base_config).backtest_sync()
    first = {s.attribute("client_id"): s.trace_id for s in traced.spans if s.name == "order"}
    second = {s.attribute("client_id"): s.trace_id for s in again.spans if s.name == "order"}
    assert set(first) & set(second)
    assert all(first[c] == second[c] for c in set(first) & set(second))


def test_otlp_form_is_written(traced: RunResult, tmp_path: Path) -> None:
    paths = traced.write(tmp_path)
    lines = paths["spans"].read_text().splitlines()
    assert len(lines) == len(traced.spans)
    first = json.loads(lines[0])
    assert set(first) >= {"traceId", "spanId", "name", "startTimeUnixNano", "endTimeUnixNano"}
    assert len(first["traceId"]) == 32 and len(first["spanId"]) == 16
    child = next(json.loads(line) for line in lines if "parentSpanId" in json.loads(line))
    assert len(child["parentSpanId"]) == 16


def test_no_tracing_no_spans(make_engine: Callable[..., Engine]) -> None:
    result = make_engine().backtest_sync()
    assert result.spans == []
    assert not any(r.name == "engine_order_span_seconds" for r in result.metrics)


def _trace_of(result: RunResult, client_id: str) -> str:
    return next(
        s.trace_id
        for s in result.spans
        if s.name == "order" and s.attribute("client_id") == client_id
    )

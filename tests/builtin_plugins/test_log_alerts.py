"""The built-in 'log' alert sink: alerts become log lines at their severity."""

from __future__ import annotations

from loguru import logger

from engine import Alert, Severity
from engine.builtins.log_alerts import _build, engine_alert_sinks


def test_alerts_are_logged_at_their_severity() -> None:
    (record,) = engine_alert_sinks()
    assert record.name == "log"
    deliver = _build(None)
    lines: list[tuple[str, str]] = []
    sink = logger.add(
        lambda m: lines.append((m.record["level"].name, m.record["message"])), level="INFO"
    )
    try:
        deliver(
            Alert(
                ts=0,
                severity=Severity.CRITICAL,
                title="trading active -> halted",
                message="drawdown",
            )
        )
        deliver(Alert(ts=0, severity=Severity.INFO, title="trading halted -> active"))
    finally:
        logger.remove(sink)
    assert lines == [
        ("CRITICAL", "alert: trading active -> halted drawdown"),
        ("INFO", "alert: trading halted -> active "),
    ]


def test_a_failing_alert_sink_does_not_stop_trading(make_engine) -> None:  # type: ignore[no-untyped-def]
    from engine import AlertSink, hookimpl

    def broken(_: object) -> object:
        def deliver(alert: Alert) -> None:
            raise ConnectionError("webhook down")

        return deliver

    class P:
        @hookimpl
        def engine_alert_sinks(self) -> list[AlertSink]:
            return [AlertSink(name="webhook", factory=broken)]

    config = {
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01"}],
        "feed": {"type": "synthetic", "bars": 3000, "volatility": 0.01},
        "strategies": [{"type": "sma_crossover", "fast": 3, "slow": 8, "quantity": "500"}],
        "alert_sinks": [{"type": "webhook"}, {"type": "log"}],
        "runtime_guards": [{"type": "drawdown", "reduce_at": 0.001, "cadence": "1m"}],
    }
    eng = make_engine(config)
    eng.register(P(), "webhook")
    result = eng.backtest_sync()
    assert result.alerts  # the drawdown guard tripped and raised alerts
    assert result.summary()["alert_failures"] == len(result.alerts)  # each failed once, counted
    assert result.bars == 3000 and result.fill_records  # trading went on

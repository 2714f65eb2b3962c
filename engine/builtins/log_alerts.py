"""Built-in plugin ``log_alerts``: the ``log`` alert sink, the default destination
of alerts (trading-state changes, liquidations). Essential: it cannot be disabled."""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from engine import Alert, AlertSink, Severity, hookimpl

LEVELS = {Severity.INFO: "INFO", Severity.WARNING: "WARNING", Severity.CRITICAL: "CRITICAL"}


def _build(config: None) -> Callable[[Alert], None]:
    def deliver(alert: Alert) -> None:
        logger.bind(alert=alert.severity.value, source=alert.source).log(
            LEVELS[alert.severity], "alert: {} {}", alert.title, alert.message
        )

    return deliver


@hookimpl
def engine_alert_sinks() -> list[AlertSink]:
    """The ``log`` alert sink."""
    return [AlertSink(name="log", factory=_build, description="Alerts as log lines.")]

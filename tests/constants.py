"""Facts the tests share."""

#: Every built-in plugin (entry points of the core distribution).
BUILTINS = frozenset(
    {
        "csv",
        "filters",
        "guards",
        "log_alerts",
        "metrics_sinks",
        "parquet",
        "performance",
        "resources",
        "runtime_guards",
        "simulated",
        "sma_crossover",
        "synthetic",
        "validation",
    }
)

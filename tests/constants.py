"""Facts the tests share."""

#: Every built-in plugin (entry points of the core distribution).
BUILTINS = frozenset(
    {
        "csv",
        "executors",
        "faults",
        "filters",
        "guards",
        "journal_sqlite",
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

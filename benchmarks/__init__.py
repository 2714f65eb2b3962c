"""The engine's benchmarks: ``python -m benchmarks`` runs every scenario and prints
one table (figure, reference measured in the same run, ratio, target); see
``docs/performance.md``. Each scenario is also a module runnable on its own."""

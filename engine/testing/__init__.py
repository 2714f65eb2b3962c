"""Helpers for testing the engine and plugins.

:mod:`engine.testing.services` starts real local servers (Redis, Prometheus...)
for integration tests.
"""

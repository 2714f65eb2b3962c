"""Record every hook call a plugin manager makes: hook, plugin, arguments, result.

The core calls each plugin's implementation of a hook on its own (record hooks
for their records, lifecycle hooks with the engine), so the recorder sees one
:class:`~engine.plugins.HookCall` per plugin and call, through
:meth:`~engine.PluginManager.add_hookcall_monitoring`.
"""

from __future__ import annotations

from typing import Any

from engine.plugins import HookCall, PluginManager

__all__ = ["HookCall", "HookRecorder"]


class HookRecorder:
    """Keeps every :class:`~engine.plugins.HookCall` of the managers it is attached to."""

    def __init__(self) -> None:
        #: every call, in order
        self.calls: list[HookCall] = []
        self._undo: list[Any] = []

    def attach(self, manager: PluginManager) -> HookRecorder:
        """Start recording the calls ``manager`` makes."""
        self._undo.append(manager.add_hookcall_monitoring(after=self.calls.append))
        return self

    def detach(self) -> None:
        """Stop recording (the calls recorded so far are kept)."""
        for undo in self._undo:
            undo()
        self._undo.clear()

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.calls.clear()

    def hooks(self) -> list[str]:
        """The hook of each call, in order (one entry per plugin called)."""
        return [c.hook for c in self.calls]

    def of(self, hook: str, plugin: str | None = None) -> list[HookCall]:
        """The calls of ``hook`` (to ``plugin`` only, if given)."""
        return [c for c in self.calls if c.hook == hook and (plugin is None or c.plugin == plugin)]

    def plugins(self, hook: str) -> list[str]:
        """The plugins whose implementation of ``hook`` was called, in call order."""
        return [c.plugin for c in self.of(hook)]

    def results(self, hook: str, plugin: str | None = None) -> list[Any]:
        """What each call of ``hook`` returned (``None`` for a call that raised)."""
        return [c.result for c in self.of(hook, plugin)]

    def errors(self) -> list[HookCall]:
        """The calls that raised."""
        return [c for c in self.calls if c.error is not None]

    def called(self, hook: str, plugin: str | None = None) -> bool:
        """True when ``hook`` was called (on ``plugin``, if given)."""
        return bool(self.of(hook, plugin))

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"HookRecorder({len(self.calls)} calls)"

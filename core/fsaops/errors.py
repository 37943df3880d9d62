"""Exceptions raised by fsaops.

Every error a user can cause is an :class:`FsaopsError`; its message is
written to be shown as it is, without a traceback.  Bugs in the model or in
a plugin that break the kernel's rules are :class:`KernelBug` subclasses,
the model's ``BUG()``.
"""

from __future__ import annotations

__all__ = [
    "BadPage",
    "ConfigError",
    "Deadlock",
    "FsaopsError",
    "InvariantError",
    "KernelBug",
    "MigrationDisabled",
    "PluginError",
    "PluginLoadError",
    "PluginSelectionError",
    "PluginValidationError",
]


class FsaopsError(Exception):
    """Base class of every error fsaops reports to a user."""


class ConfigError(FsaopsError):
    """A configuration file or value is not acceptable."""


class PluginError(FsaopsError):
    """A plugin could not be selected, loaded or validated."""


class PluginSelectionError(PluginError):
    """The plugin selection names a plugin that is not installed, or twice."""


class PluginLoadError(PluginError):
    """A plugin's module failed to import or register.

    The message names the plugin as ``distribution[entry]``.
    """

    def __init__(self, plugin: str, cause: BaseException) -> None:
        self.plugin = plugin
        self.cause = cause
        super().__init__(f"plugin {plugin} failed to load: {type(cause).__name__}: {cause}")


class PluginValidationError(PluginError):
    """A plugin returned something that is not a valid filesystem type or table."""

    def __init__(self, plugin: str, problem: str) -> None:
        self.plugin = plugin
        self.problem = problem
        super().__init__(f"plugin {plugin}: {problem}")


class MigrationDisabled(FsaopsError):
    """Migration was asked for on a kernel built without it (``-ENOSYS``)."""


class KernelBug(Exception):
    """The model's ``BUG()``: a rule of the kernel was broken.

    Raised when code (the engine or a plugin) leaves the model in a state the
    kernel forbids, for example freeing a page that is still mapped.
    """


class BadPage(KernelBug):
    """A page was freed while still in use (the kernel's ``bad_page()``)."""


class InvariantError(KernelBug):
    """The invariant checker found problems; ``problems`` lists them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} invariant(s) broken:\n  {shown}{more}")


class Deadlock(KernelBug):
    """A task waited for something that can never happen.

    The kernel would hang; the model reports the wait instead.  It is a
    failure of the run (exit 1), never a user's error.
    """

    def __init__(self, what: str, now: int) -> None:
        self.what = what
        self.now = now
        super().__init__(f"deadlock at tick {now}: waiting for {what}, and nothing can wake it")

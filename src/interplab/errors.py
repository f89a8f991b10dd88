"""Exception types. Every error raised for bad user input derives from InterplabError.

Messages follow one rule: say what was expected, what was found, and how to fix it.

``exit_code`` is what the command line exits with when the error reaches it: 2 for usage
errors (a bad name, option value or spec file: the user can fix the command), 1 for runtime
failures (corrupt files, missing packages, a program that cannot compile).
"""

from __future__ import annotations


class InterplabError(Exception):
    """Root of every error interplab raises on purpose."""

    exit_code: int = 1


class SiteError(InterplabError, KeyError):
    """A site string is malformed, or the model has no such site, or a site never fired."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ShapeError(InterplabError, ValueError):
    """A tensor has the wrong shape for where it is used (patch, cache, intervention)."""


class ConfigError(InterplabError, ValueError):
    """A configuration value (or command-line option) is invalid."""

    exit_code = 2


class WeightsError(InterplabError):
    """A weights file is missing, corrupt, or does not match its config."""


class VerificationError(InterplabError):
    """An organism's ground truth disagrees with its own weights (checked by intervention on
    held-out data before any method is scored against it); the message names what failed."""


class CompileError(InterplabError):
    """A RASP program cannot be compiled; the message lists every offending expression."""


class UnknownNameError(InterplabError, KeyError):
    """A name (organism, method, program, model) is not registered; the message lists valid names."""

    exit_code = 2

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SpecError(InterplabError, ValueError):
    """A benchmark spec file is invalid; the message points to the line."""

    exit_code = 2


class ResultsStoreError(InterplabError):
    """The results database is corrupt or from an incompatible version."""


class MissingExtraError(InterplabError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build an UnknownNameError listing the valid names, with a close match if there is one."""
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(valid))
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {listed}.")

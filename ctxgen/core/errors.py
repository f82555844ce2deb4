"""The error hierarchy and the one place that maps errors to exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem the user can fix; its message is one line naming the file, field and fix."""

    exit_code = EXIT_FAILED


class UsageError(UserError):
    """The command line itself is wrong (no scenes, a bad option value): nothing was started."""

    exit_code = EXIT_USAGE


class SceneError(UserError):
    """A scene file has one or more problems; each is one line `file:LINE:COL field.path: message`."""

    def __init__(self, issues: list[str], partial: object = None):
        self.issues = list(issues)
        self.partial = partial  # what could still be checked (ctxgen.scene.model.PartialScene), for `validate`
        super().__init__("\n".join(self.issues))


class ModelError(UserError):
    """Weights or adapters are missing, unsafe or do not match."""


class OutputError(UserError):
    """An output folder or file cannot be written."""


OOM_HINT = "out of GPU memory; try --memory balanced or --memory low, a smaller size, or fewer references"


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (or any error saying so), without importing torch."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def describe(exc: BaseException) -> str:
    """A failure as text for manifests and messages: scene issues one per line, user errors as written."""
    if isinstance(exc, SceneError):
        return "\n".join(exc.issues)
    if isinstance(exc, UserError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    return text + f" ({OOM_HINT})" if is_out_of_memory(exc) else text


def install_hint(extra: str) -> str:
    """How to add an optional extra: ctxgen is installed from its repository, not from the package index."""
    return f'pip install -e ".[{extra}]" in your ctxgen checkout'

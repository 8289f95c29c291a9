from __future__ import annotations

"""Errors that are the user's to fix. The CLI prints them as one line and exits 1."""


class TrtDeployError(Exception):
    """A mistake in the input (model, names, shapes, options): the message names the
    tensor/node/file involved and says how to fix it."""


class MissingDependencyError(TrtDeployError):
    """An optional dependency is not installed; the message says what to install."""


def require(module: str, extra: str, pip_name: str | None = None):
    """Import an optional dependency lazily, or fail with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        hint = pip_name or module
        alt = " (onnxruntime-gpu works too)" if module == "onnxruntime" else ""
        raise MissingDependencyError(
            f"this needs '{module}', which is not installed ({exc}); install it with "
            f"`pip install {hint}` or `pip install trtdeploy[{extra}]`{alt}"
        ) from None

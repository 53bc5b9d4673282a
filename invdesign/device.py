"""Pick the compute device. The device is a runtime choice, never part of the science."""

from __future__ import annotations

import os

from .errors import InvdesignError


def resolve_device(requested: str | None = None) -> "torch.device":  # noqa: F821
    """``auto`` (default) uses CUDA when present; ``cuda`` fails clearly when absent.

    The environment variable ``INVDESIGN_DEVICE`` overrides the config value.
    """
    import torch

    requested = (os.environ.get("INVDESIGN_DEVICE") or requested or "auto").lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvdesignError(
                f"device '{requested}' was requested (config runtime.device or INVDESIGN_DEVICE) "
                "but no CUDA GPU is visible to torch; set runtime.device: auto or cpu"
            )
        return torch.device(requested)
    if requested == "cpu":
        return torch.device("cpu")
    raise InvdesignError(
        f"unknown device '{requested}' in runtime.device / INVDESIGN_DEVICE; use auto, cpu, cuda or cuda:N"
    )

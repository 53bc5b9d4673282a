"""Pick the compute device. The device is a runtime choice, never part of the science."""

from __future__ import annotations

import os
import re

from .errors import InvdesignError

#: the spellings torch.device takes (lower case), as runtime.device's schema pattern has them
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"


def device_setting(requested: str | None = None) -> str:
    """The device asked for: ``INVDESIGN_DEVICE`` when set, else ``requested`` (config ``runtime.device``), else
    ``auto``; one line when it is not a device torch knows (checked while planning, before any job). No torch."""
    env = os.environ.get("INVDESIGN_DEVICE")
    value = env or requested or "auto"
    if not re.fullmatch(DEVICE_PATTERN, value):
        where = "the environment variable INVDESIGN_DEVICE" if env else "runtime.device"
        hint = f" (torch spells it {value.lower()!r})" if re.fullmatch(DEVICE_PATTERN, value.lower()) else ""
        raise InvdesignError(f"unknown device {value!r} in {where}{hint}; use auto, cpu, cuda or cuda:N")
    return value


def resolve_device(requested: str | None = None) -> "torch.device":  # noqa: F821
    """``auto`` (default) uses CUDA when present; ``cuda`` fails clearly when absent.

    The environment variable ``INVDESIGN_DEVICE`` overrides the config value.
    """
    import torch

    requested = device_setting(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InvdesignError(
            f"device '{requested}' was requested (config runtime.device or INVDESIGN_DEVICE) "
            "but no CUDA GPU is visible to torch; set runtime.device: auto or cpu"
        )
    return torch.device(requested)

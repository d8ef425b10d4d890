"""The one place a ``device`` argument is checked: the numpy-or-torch choice of the RSA math, the torch device the
teachers, students and feature extraction run on, and this process's device under ``torchrun``.

torch is imported only when a device is asked for (it is slow to import, and numpy is the RSA math's default).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rsa_toolkit.errors import UserInputError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device"]


def resolve_device(device: object | None, *, rsa: bool = False, local: bool = False) -> torch.device | None:
    """``device`` checked and as a ``torch.device``.

    ``rsa=True``: the device of the RSA math, where None means numpy (returned as None) and a torch device must be
    'cpu' or 'cuda[:N]' (the math needs float64). Otherwise the device models run on: 'cpu', 'cuda', 'cuda:N' or
    'mps'. ``local=True`` maps a CUDA device without an index to ``cuda:LOCAL_RANK`` under ``torchrun``.
    """
    if rsa:
        return None if device is None else _rsa_device(device)
    import torch

    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as exc:
        raise UserInputError(f"device='{device}': {exc}; expected cpu, cuda, cuda:N or mps.",
                             parameter="device") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UserInputError(f"device='{device}': not a device rsa-toolkit runs on; expected cpu, cuda, cuda:N or "
                             f"mps.", parameter="device")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device='{device}': no CUDA device is available here (CUDA is not available to this "
                             f"PyTorch); use device=cpu.", parameter="device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise UserInputError(f"device='{device}': this machine has {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}; choose one of them.", parameter="device")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"device='{device}': MPS is not available here; use device=cpu.", parameter="device")
    if local and dev.type == "cuda" and dev.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return dev


def _rsa_device(device: object) -> torch.device:
    import torch

    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as exc:
        raise UserInputError(f"device {device!r}: {exc}; expected None (numpy), 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device '{device}': no CUDA device is available here; use device None (numpy).")
    if dev.type not in ("cpu", "cuda"):
        raise UserInputError(f"device '{device}': the RSA math runs on 'cpu' or 'cuda' devices (it needs float64); "
                             f"use device None (numpy) or a CUDA device.")
    return dev

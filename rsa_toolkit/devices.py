"""The ``device`` argument of the RSA math: None (numpy) or a checked torch device. torch is imported only when a
device is asked for (it is slow to import, and numpy is the default)."""

from __future__ import annotations


def check_rsa_device(device: object | None) -> object | None:
    if device is None:
        return None
    from rsa_toolkit.rsa.torch_math import check_device

    return check_device(device)

"""The mini zoo's probe set, ``mini``, registered in :data:`rsa_toolkit.images.probe.PROBE_SETS` (which imports this
module when a probe set is first looked up by name). The frames are rendered only when the set is asked for."""

from __future__ import annotations

from rsa_toolkit.images.probe import PROBE_SETS, ProbeSet

__all__: list[str] = []


@PROBE_SETS.register("mini")
def _mini_probe() -> ProbeSet:
    from rsa_toolkit.zoo.mini.embedded import mini_probe  # rendering needs the scene package: imported when asked for

    return mini_probe()

"""What the compiled engine asks of the machine, and the choices it makes from the answers.

Two numbers shape the kernels of `nnlab._kernels` and the layout choice of `nnlab.sgd.layout`:

- the lanes, replicas per vector in the lane layout: 16 float64 (two 512-bit registers, two independent
  chains) where the CPU has AVX-512 (avx512f), else 8 (two 256-bit AVX2 registers). ``NNLAB_LANES=8``
  or ``16`` overrides the choice (to test one width on a machine of the other kind; the kernels are
  then compiled for this process only, never written to or read from numba's cache, which holds the
  detected width's).
- the per-core cache (L2): the lane layout keeps a chunk's weights (lanes x parameters x 8 bytes)
  in it while the samples stream, so the parameter count where the replica layout takes over,
  `replica_params`, scales with the cache over the lanes. On the machine it was measured on (Intel
  Xeon, AVX-512, 2 MB L2) the crossover was 32768 parameters, a chunk twice the L2.

A replica's numbers do not depend on the lanes (no lane mixes with another, and every lane runs the
same IEEE operations); a different layout (another machine's cache size putting a network on the other
side of the threshold) changes the numbers by rounding only.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

LANE_CHOICES = (8, 16)
# The machine the thresholds were measured on: its L2 per core, and the crossover there (in parameters
# per replica: a chunk of 16 replicas' weights twice the L2, `nnlab.sgd.REPLICA_PARAMS`' comment).
MEASURED_L2 = 2 * 1024 * 1024
MEASURED_REPLICA_PARAMS = 32768


@dataclass(frozen=True)
class Machine:
    """What the engine reads of the host: AVX-512 (avx512f) or not, and the L2 cache per core (bytes;
    the measured machine's when unknown)."""

    avx512: bool
    l2_bytes: int


def choose_lanes(avx512: bool, override: str | None = None) -> int:
    """Replicas per vector: ``override`` (NNLAB_LANES: "8" or "16") if given, else 16 with AVX-512
    and 8 without (two registers either way)."""
    if override is not None and override.strip() != "":
        try:
            lanes = int(override)
        except ValueError:
            lanes = -1
        if lanes not in LANE_CHOICES:
            raise ValueError(f"NNLAB_LANES: expected one of 8, 16, got {override!r}")
        return lanes
    return 16 if avx512 else 8


def replica_params(l2_bytes: int, lanes: int) -> int:
    """The parameters per replica from which per-sample training takes the replica layout: a chunk of
    ``lanes`` replicas' weights twice the L2 (32768 on the measured machine), as a power of two, at
    least 4096."""
    chunk_params = 2 * l2_bytes // (8 * lanes)
    return max(4096, 1 << max(0, chunk_params.bit_length() - 1))


def _l2_bytes() -> int:
    """The L2 per core from /sys (Linux), else the measured machine's."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for index in sorted(base.glob("index*")):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip().upper()
                scale = {"K": 1024, "M": 1024 * 1024}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return MEASURED_L2


@functools.cache
def host() -> Machine:
    """This machine (read once per process). numba's target CPU features (NUMBA_CPU_FEATURES) win
    over the host's when set, since they decide the code compiled."""
    features = os.environ.get("NUMBA_CPU_FEATURES")
    if features is None:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    return Machine("+avx512f" in features.split(","), _l2_bytes())


def lanes() -> int:
    """The lanes of this process: `choose_lanes` for this machine and NNLAB_LANES."""
    return choose_lanes(host().avx512, os.environ.get("NNLAB_LANES"))


def cached_lanes() -> bool:
    """Whether the kernels may use numba's disk cache: only at the detected width (an override of
    NNLAB_LANES compiles for the process, so that cached code of the other width is never loaded)."""
    return lanes() == choose_lanes(host().avx512)

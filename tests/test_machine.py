"""The engine's reading of the machine (`nnlab.machine`): pure choices, checked by hand."""

import pytest

from nnlab import machine


def test_lanes_follow_the_vector_width_and_the_override():
    assert machine.choose_lanes(True) == 16  # AVX-512: two 512-bit registers of 8 doubles
    assert machine.choose_lanes(False) == 8  # AVX2: two 256-bit registers of 4 doubles
    assert machine.choose_lanes(True, "8") == 8
    assert machine.choose_lanes(False, " ") == 8
    with pytest.raises(ValueError, match=r"^NNLAB_LANES: expected one of 8, 16, got '12'$"):
        machine.choose_lanes(True, "12")


def test_the_replica_threshold_scales_with_the_cache_over_the_lanes():
    # The measured machine: 2 MB of L2, 16 lanes -> 32768 (a chunk of weights twice the L2).
    assert machine.replica_params(2 * 1024 * 1024, 16) == machine.MEASURED_REPLICA_PARAMS == 32768
    assert machine.replica_params(2 * 1024 * 1024, 8) == 65536
    assert machine.replica_params(512 * 1024, 8) == 16384  # e.g. Zen 3: 512 KB of L2, AVX2
    assert machine.replica_params(1280 * 1024, 16) == 16384  # rounded down to a power of two
    assert machine.replica_params(64 * 1024, 16) == 4096  # the floor

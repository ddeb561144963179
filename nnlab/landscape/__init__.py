"""The loss landscape around trained networks: second-order back-propagation, certification of end
points, and their symmetries.

- `nnlab.landscape.curvature`: Hessian-vector products by Pearlmutter's R-operator, the full Hessian
  and its extreme eigenvalues (`hvp`, `hessian`, `extreme_eigenvalues`).
- `nnlab.landscape.polish`: polish an end point to the critical point it sits near and classify it
  (`certify`, `classify`, `Options`, `KINDS`).
- `nnlab.landscape.symmetry`: canonical forms and alignment modulo hidden-unit permutations and sign
  flips, distinct optima and their flat families, and loss barriers (`canonical`, `align`,
  `distinct_optima`, `loss_margin`, `flat_families`, `barrier`).

A room between the training engine and the sweep: it reads networks and data, never tables.
"""

from nnlab.landscape.curvature import Extremes, extreme_eigenvalues, gradient, hessian, hvp, lanczos
from nnlab.landscape.polish import Certificate, Options, certify, classify, symmetry_directions
from nnlab.landscape.symmetry import (
    align,
    barrier,
    canonical,
    distinct_optima,
    flat_families,
    function_distance,
    loss_margin,
    parameter_distance,
)
from nnlab.schema import KINDS

__all__ = [
    "KINDS",
    "Certificate",
    "Extremes",
    "Options",
    "align",
    "barrier",
    "canonical",
    "certify",
    "classify",
    "distinct_optima",
    "extreme_eigenvalues",
    "flat_families",
    "function_distance",
    "gradient",
    "hessian",
    "hvp",
    "lanczos",
    "loss_margin",
    "parameter_distance",
    "symmetry_directions",
]

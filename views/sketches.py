"""The visitors' HLL sketches, in plain Python: how the stored sketches are merged.

Spark builds them (``hll_sketch_agg`` in ``views.transforms``) as Apache DataSketches HLL
sketches; the datasketches library reads the same bytes, so any range's visitors are the
estimate of the union of its buckets' sketches, never a sum of counts.
"""
from __future__ import annotations

from collections.abc import Iterable

from datasketches import hll_sketch, hll_union

# lg_config_k of the visitor sketches: 2^12 registers, ~1.6% standard error. Fixed, because
# only sketches built with the same parameter merge without losing precision.
HLL_LG_K = 12


def union_estimate(sketches: Iterable[bytes]) -> int:
    """Distinct visitors of several buckets: the estimate of the union of their sketches."""
    union = hll_union(HLL_LG_K)
    for blob in sketches:
        union.update(hll_sketch.deserialize(bytes(blob)))
    return int(round(union.get_result().get_estimate()))

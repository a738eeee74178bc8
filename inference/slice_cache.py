"""Slice embeddings of a volume: encoded on demand, kept between uses within a byte budget."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from inference.predictor import BoxPredictor, ImageEmbedding

# Slice embeddings a volume's segmentation may keep between its sweeps. One is
# 256 x 64 x 64 float32 (4 MiB), so this holds 32; slices past that are encoded again.
# 32 keep a 181 x 217 x 181 brain with twelve overlapping structures under 600 MB peak
# RSS (it would keep 49, 16 are encoded again: 166 encodes instead of 150).
CACHE_BYTES = 128 * 2**20


class Embeddings(Protocol):
    """Where slice embeddings come from: `get` one, `release` slices after their use."""

    def get(self, z: int) -> ImageEmbedding: ...

    def release(self, slices: Iterable[int]) -> None: ...


class SliceEmbeddings:
    """Encodes slices on demand, keeps those needed again within a byte budget, frees each after its last use.

    A slice needed again that does not fit evicts the lowest cached slices, which
    are encoded again at their next use; a slice needed only now is then not kept.
    """

    def __init__(
        self, predictor: BoxPredictor, volume: np.ndarray, uses: np.ndarray, budget_bytes: int | None = CACHE_BYTES
    ) -> None:
        """`uses[z]`: how many times slice z will be released before it can be dropped; `None` budget: no limit."""
        self._predictor = predictor
        self._volume = volume
        self._pending = np.array(uses, dtype=np.int64)
        self._budget = budget_bytes
        self._cache: dict[int, ImageEmbedding] = {}
        self._seen = np.zeros(len(self._pending), dtype=bool)
        self.cached_bytes = 0
        self.encoded = 0
        self.reencoded = 0  # encodes of slices encoded before: what the budget costs
        self.peak_cached = 0
        self.peak_bytes = 0

    def get(self, z: int) -> ImageEmbedding:
        """Embedding of slice z, encoding it if it is not cached."""
        if z in self._cache:
            return self._cache[z]
        embedded = self._predictor.embed(self._volume[z])
        self.encoded += 1
        self.reencoded += int(self._seen[z])
        self._seen[z] = True
        size = embedded.embedding.nbytes
        # Belady's choice (evict what is needed farthest ahead) under `VolumeSegmenter.segment`:
        # while a sweep is at z, every cached slice lies below z and waits for the
        # downward sweep, which visits z before them and them from the highest down.
        # So the lowest is needed last, and z itself sooner than any of them unless
        # it is not needed again: then evicting for it would only cost an encode.
        # Every slice kept between the sweeps is held across their turn, so no cache
        # of `slots` embeddings encodes fewer than `kept - slots` slices twice; this
        # one encodes that many.
        if self._pending[z] > 1:
            self._evict_lowest_until_fits(size)
        if self._fits(size):
            self._cache[z] = embedded
            self.cached_bytes += size
            self.peak_cached = max(self.peak_cached, len(self._cache))
            self.peak_bytes = max(self.peak_bytes, self.cached_bytes)
        return embedded

    def cached_slices(self) -> list[int]:
        """The slices whose embeddings are held now, sorted."""
        return sorted(self._cache)

    def release(self, slices: Iterable[int]) -> None:
        """One use of each slice is done; drop the embeddings nothing needs any more."""
        for z in slices:
            self._pending[z] -= 1
            if self._pending[z] == 0 and z in self._cache:
                self._drop(z)

    def _fits(self, size: int) -> bool:
        return self._budget is None or self.cached_bytes + size <= self._budget

    def _evict_lowest_until_fits(self, size: int) -> None:
        while self._cache and not self._fits(size):
            self._drop(min(self._cache))

    def _drop(self, z: int) -> None:
        self.cached_bytes -= self._cache.pop(z).embedding.nbytes

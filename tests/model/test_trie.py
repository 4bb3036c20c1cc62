"""The log-dirty trie against the research numbers (xen-paging.md §3.1)."""

from __future__ import annotations

import numpy as np
import pytest

from xenvmmu.model.constants import ENOMEM, LEAF_BITS, ShadowOp
from xenvmmu.model.guest import dm_mark_dirty
from xenvmmu.model.pool import PagingPool
from xenvmmu.model.trie import LogDirtyTrie, TrieCounts, split_pfn

from .helpers import R450, GiB, MiB, build, shadow_op


def test_index_mapping() -> None:
    pfn = (3 << 33) | (5 << 24) | (7 << 15) | 0x1234
    assert split_pfn(pfn) == (3, 5, 7, 0x1234)


def test_fully_dirty_1tib_is_8210_pages() -> None:
    # 8192 leaves + 16 L2 + 1 L3 + top (no MMIO hole: RAM is one range)
    d = build(1 << 40, R450, log_dirty=True, dirty="per_region", mmio_hole_bytes=0)
    assert d.trie.counts() == TrieCounts(1, 1, 16, 8192)
    assert d.trie.counts().pages == 8210
    assert d.trie.dirty_count == 8192  # one bit per leaf


def test_hole_relocation_adds_an_l2_node() -> None:
    d = build(1 << 40, R450, log_dirty=True, dirty="per_region")
    # 256 MiB relocated above 1 TiB: the walk's last 64 GiB region gets its own L2 node
    assert d.trie.counts() == TrieCounts(1, 1, 17, 8192)


@pytest.mark.parametrize("pattern", ["all", "per_region"])
def test_dirty_patterns_share_the_trie_shape(pattern: str) -> None:
    d = build(10 * GiB, R450, log_dirty=True, dirty=pattern)
    ram = d.layout.ram_pages
    n_leaves = 30 + (10 * GiB - (4 * GiB - 256 * MiB) + 128 * MiB - 1) // (128 * MiB)
    assert d.trie.counts() == TrieCounts(1, 1, 1, n_leaves)
    assert d.trie.dirty_count == (ram if pattern == "all" else n_leaves)
    assert d.pool.p2m_pages >= d.trie.counts().pages  # trie nodes count as p2m pages


def test_random_pattern_is_reproducible_and_exact() -> None:
    a = build(2 * GiB, R450, log_dirty=True, dirty=("random", 0.01, 7))
    b = build(2 * GiB, R450, log_dirty=True, dirty=("random", 0.01, 7))
    assert a.state() == b.state()
    bits = a.trie.bitmap(a.layout.p2m_size)
    assert int(np.unpackbits(bits).sum()) == a.trie.dirty_count
    assert 0.005 * a.layout.ram_pages < a.trie.dirty_count < 0.02 * a.layout.ram_pages


def test_clean_never_shrinks_the_trie() -> None:
    d = build(4 * GiB, R450, log_dirty=True, dirty="all")
    counts = d.trie.counts()
    shadow_op(d)
    assert d.trie.counts() == counts
    assert not d.trie.bitmap(d.layout.p2m_size).any()


def test_failed_allocation_drops_the_mark_then_clean_fails() -> None:
    pool = PagingPool("hap", 1, 1 << 20)
    pool.total_pages = pool.free_pages = 3  # top, L3, L2 fit; the leaf does not
    trie = LogDirtyTrie(pool)
    trie.mark(5)
    assert trie.failed_allocs == 1 and trie.dirty_count == 0
    assert trie.counts() == TrieCounts(1, 1, 1, 0)
    trie.mark(6)  # the retry fails again
    assert trie.failed_allocs == 2

    d = build(1 * GiB, R450, log_dirty=True, pool_mb=3)
    d.pool.free_pages = 0
    dm_mark_dirty(d, 100)
    assert d.trie.failed_allocs == 1
    comp, _ = shadow_op(d)
    assert comp.rc == -ENOMEM
    assert d.preempt.dom is None and d.paused == 0


def test_mark_range_equals_single_marks() -> None:
    pool = PagingPool("hap", 1, 1 << 20)
    pool.total_pages = pool.free_pages = 100
    a, b = LogDirtyTrie(pool), LogDirtyTrie(PagingPool("hap", 1, 1 << 20))
    b.pool.total_pages = b.pool.free_pages = 100
    a.mark_range(LEAF_BITS - 5, 2 * LEAF_BITS + 17)
    for p in range(LEAF_BITS - 5, 2 * LEAF_BITS + 17):
        b.mark(p)
    assert a.snapshot() == b.snapshot()
    assert a.mark_range(LEAF_BITS, LEAF_BITS + 3).dirty_marks == 3
    assert a.dirty_count == LEAF_BITS + 22


def test_peek_leaves_bits_and_counters() -> None:
    d = build(1 * GiB, R450, log_dirty=True, dirty="per_region")
    before = d.trie.snapshot()
    comp, sc = shadow_op(d, ShadowOp.PEEK)
    assert comp.rc == 0 and d.trie.snapshot() == before
    assert sc.dirty_count == d.trie.dirty_count == 8

"""Layout arithmetic and the paging pool's rules (xen-paging.md §5)."""

from __future__ import annotations

import pytest

from xenvmmu.model.allocation import set_allocation
from xenvmmu.model.build import default_pool_mb
from xenvmmu.model.constants import ENOMEM, ERESTART
from xenvmmu.model.layout import count_blocks, decompose, first_page_per_block, hvm_layout
from xenvmmu.model.pool import PagingPool
from xenvmmu.model.runner import Always, AtIndices, drive

from .helpers import R440, R450, GiB, MiB, build


def test_hvm_layout_vga_and_mmio_hole() -> None:
    lay = hvm_layout(8 * GiB)
    assert lay.ram == ((0, 0xA0), (0xC0, 0xF0000), (0x100000, 0x100000 + 0x10000 + 0x100000))
    assert lay.ram_pages == (8 * GiB >> 12) - 0x20  # the VGA hole is skipped, not relocated
    assert lay.p2m_size == 0x100000 + (8 * GiB - (4 * GiB - 256 * MiB) >> 12)
    small = hvm_layout(64 * MiB)
    assert small.ram == ((0, 0xA0), (0xC0, 0x4000))


def test_decompose_prefers_1g_then_2m() -> None:
    runs = decompose(0xC0, 0x100000, "1g")
    assert [(r.order, r.leaves) for r in runs] == [(0, 512 - 0xC0), (9, 511), (18, 3)]
    assert [r.order for r in decompose(0, 1 << 18, "4k")] == [0]


def test_block_counts_closed_form() -> None:
    spans = [(0, 0xA0), (0xC0, 0x1000)]
    assert count_blocks(spans, 9) == 8  # 2M blocks of [0, 16 MiB)
    assert count_blocks([(0, 10), (10, 20)], 15) == 1
    assert first_page_per_block([(0, 0xA0), (0xC0, 1 << 16)], 15) == [0, 1 << 15]


@pytest.mark.parametrize(
    ("ram", "vcpus", "mb"),
    [(1 << 40, 1, 8193), (4 * GiB, 2, 34), (1 * GiB, 1, 9)],
)
def test_default_pool_is_xl_formula(ram: int, vcpus: int, mb: int) -> None:
    # libxl_get_required_shadow_memory @ RELEASE-4.4.0: 1 MiB per vCPU + 8 KiB per MiB
    assert default_pool_mb(ram, vcpus) == mb


def test_get_allocation_rounds_up_and_counts_p2m_pages() -> None:
    pool = PagingPool("hap", 1, 1 << 18)
    pool.total_pages, pool.p2m_pages = 300, 1
    assert pool.allocation_mb() == 2  # 301 pages -> 2 MiB (rounded up)
    pool.total_pages, pool.p2m_pages = 256, 0
    assert pool.allocation_mb() == 1


def test_shadow_floor() -> None:
    pool = PagingPool("shadow", 4, 1 << 20)  # 4 GiB of RAM
    assert pool.min_acceptable() == 5 * 128  # (vCPUs + 1) * 128 in 4.4
    assert pool.target(1) == 5 * 128 + (1 << 20) // 256  # + 1 page per MiB
    assert pool.target(0) == 0


def test_hap_pool_exhaustion_fails_p2m_allocation() -> None:
    pool = PagingPool("hap", 1, 1000)
    pool.total_pages = pool.free_pages = 1
    assert pool.alloc_p2m_page()
    assert (pool.total_pages, pool.free_pages, pool.p2m_pages) == (0, 0, 1)
    assert not pool.alloc_p2m_page()
    assert pool.p2m_alloc_failed


def test_set_allocation_checks_after_every_page() -> None:
    d = build(1 * GiB, R440)
    before = d.pool.total_pages
    run = drive(set_allocation(d, (d.pool.total_pages + d.pool.p2m_pages) + 10, True))
    assert run.rc == 0 and run.checks == 10  # including after the last page
    assert d.pool.total_pages == before + 10
    assert run.total.heap_pages_allocated == 10
    # preempted after the 3rd page: three pages moved, -ERESTART, resumable
    run = drive(set_allocation(d, d.pool.total_pages + d.pool.p2m_pages - 5, True), AtIndices(
        frozenset({2})))
    assert run.rc == -ERESTART and run.total.heap_pages_freed == 3
    run = drive(set_allocation(d, d.pool.total_pages + d.pool.p2m_pages - 2, True), Always())
    assert run.rc == -ERESTART and run.total.heap_pages_freed == 1  # never before the 1st page


def test_hap_shrink_fails_with_enomem_when_free_list_empty() -> None:
    d = build(1 * GiB, R450)
    used = d.pool.total_pages - d.pool.free_pages  # monitor tables
    assert used == 1
    assert drive(set_allocation(d, 0, False)).rc == -ENOMEM
    assert d.pool.total_pages == used

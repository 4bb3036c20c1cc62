/*
 * Shape kernels for `xenvmmu calibrate`.
 *
 * Each kernel is a small loop with the memory-access and locking *shape* of a piece of work
 * that Xen's paging code does per unit counted by xenvmmu.model.work.Work. None of this is
 * Xen code: the data layouts (an 8-byte table entry with a 6-bit type field, a 32-byte page
 * descriptor, a 251-bucket hash of singly linked chains, a doubly linked free list of
 * descriptors) only copy the sizes and access patterns that matter for timing.
 *
 * Usage: shapes KERNEL REPS SEED SIZE [SIZE2]
 *   sweep    SIZE leaf tables of 512 entries under a 4-level tree; per rep a read-only pass,
 *            a rewriting pass and a rewriting pass with a lock round trip per entry (each
 *            timed pass after an untimed one of its kind)
 *   bitmap   SIZE 4 KiB pages: copy scattered pages to a contiguous buffer, zero them, then
 *            scan each for its first non-zero word (only the last is non-zero)
 *   hash     SIZE records in 251 chains, SIZE2 of them unlinked in scrambled order
 *   refs     SIZE frames: one entry per frame in 512-entry pages, two atomic drops each
 *   freelist SIZE descriptors: pop all off a free list, push them back
 *
 * One warm-up repetition is run and not reported; then each repetition prints one line
 * `KERNEL key=value ...` (nanoseconds and unit counts) and flushes it. Exit status 2 on bad
 * arguments, 3 when memory cannot be had.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SLOTS 512u
#define PAGE_BYTES 4096u
#define NIL 0xffffffffu

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#if defined(__x86_64__) || defined(__i386__)
#define SPIN_HINT() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define SPIN_HINT() __asm__ __volatile__("yield" ::: "memory")
#else
#define SPIN_HINT() __asm__ __volatile__("" ::: "memory")
#endif

/* ---------------------------------------------------------------- common helpers */

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t prng = 0x2545f4914f6cdd1dull;

static uint64_t next_random(void)
{
    /* xorshift64* */
    prng ^= prng >> 12;
    prng ^= prng << 25;
    prng ^= prng >> 27;
    return prng * 0x2545f4914f6cdd1dull;
}

static void scramble(uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next_random() % i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static void *grab(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
    if (rounded == 0 || posix_memalign(&p, PAGE_BYTES, rounded) != 0 || p == NULL) {
        fprintf(stderr, "shapes: cannot allocate %zu bytes\n", bytes);
        exit(3);
    }
#ifdef MADV_HUGEPAGE
    /* Xen maps its direct map and frame table with large pages: ask for 2 MiB pages too
     * (a hint; a PV dom0 or a kernel without transparent huge pages ignores it) */
    if (rounded >= (4u << 20))
        (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    memset(p, 0, rounded); /* touch every page before any timing */
    return p;
}

/* 0, 1, ..., n-1 in scrambled order */
static uint32_t *scrambled_indices(size_t n)
{
    uint32_t *a = grab(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (uint32_t)i;
    scramble(a, n);
    return a;
}

/* ------------------------------------------------------ (a), (b) type sweep, 4 levels */

/*
 * Entry layout (own choice): bit 0 present, bits 1-3 access rights, bits 12-51 the number
 * of the page it points to (for upper levels: a table in the pool), bits 52-57 a 6-bit type.
 */
#define E_PRESENT 0x1ull
#define E_RIGHTS 0xeull
#define E_FRAME 0x000ffffffffff000ull
#define E_TYPE_SHIFT 52
#define E_TYPE (0x3full << E_TYPE_SHIFT)

enum { T_PLAIN = 0, T_TRACKED = 1, T_ABSENT_TYPE = 9 };

static const uint64_t rights_of_type[64] = {
    [T_PLAIN] = 0xeull,   /* read, write, execute */
    [T_TRACKED] = 0xaull, /* read, execute: writes fault */
};

static uint64_t *pool;

static uint64_t *table_at(uint64_t entry)
{
    return pool + ((entry & E_FRAME) >> 12) * SLOTS;
}

static uint64_t with_type(uint64_t e, unsigned t)
{
    return (e & ~(E_TYPE | E_RIGHTS)) | ((uint64_t)t << E_TYPE_SHIFT) | rights_of_type[t];
}

/* the locked write: a recursive-capable spinlock, a CPU mask test, through a pointer */
struct walk_lock {
    int held;
    int owner;
    unsigned depth;
} __attribute__((aligned(64)));

static struct walk_lock table_lock = { 0, -1, 0 };
static uint64_t cpus_to_flush[4] __attribute__((aligned(64))); /* no CPU: nothing to flush */
static uint64_t flush_requests;

static void lock_enter(struct walk_lock *l, int me)
{
    if (LOAD(l->owner) == me) {
        l->depth++;
        return;
    }
    while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE))
        while (LOAD(l->held))
            SPIN_HINT();
    STORE(l->owner, me);
    l->depth = 1;
}

static void lock_leave(struct walk_lock *l)
{
    if (--l->depth)
        return;
    STORE(l->owner, -1);
    __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
}

static __attribute__((noinline)) void write_locked(uint64_t *slot, uint64_t value)
{
    lock_enter(&table_lock, 0);
    uint64_t before = LOAD(*slot);
    STORE(*slot, value);
    if (before & E_PRESENT) {
        uint64_t any = 0;
        for (int w = 0; w < 4; w++)
            any |= LOAD(cpus_to_flush[w]);
        if (any)
            flush_requests++;
    }
    lock_leave(&table_lock);
}

static void (*volatile entry_writer)(uint64_t *, uint64_t) = write_locked;

enum pass { READ_ONLY, REWRITE, REWRITE_LOCKED };

/* visit every present slot of the 4 levels; in leaves compare the type with `from` and,
 * unless READ_ONLY, retype matching entries to `to`. Returns the number of matches. */
static uint64_t sweep(uint64_t root, enum pass how, unsigned from, unsigned to)
{
    uint64_t hits = 0;
    uint64_t *l4 = table_at(root);
    for (unsigned i4 = 0; i4 < SLOTS; i4++) {
        uint64_t e4 = LOAD(l4[i4]);
        if (!(e4 & E_PRESENT))
            continue;
        uint64_t *l3 = table_at(e4);
        for (unsigned i3 = 0; i3 < SLOTS; i3++) {
            uint64_t e3 = LOAD(l3[i3]);
            if (!(e3 & E_PRESENT))
                continue;
            uint64_t *l2 = table_at(e3);
            for (unsigned i2 = 0; i2 < SLOTS; i2++) {
                uint64_t e2 = LOAD(l2[i2]);
                if (!(e2 & E_PRESENT))
                    continue;
                uint64_t *l1 = table_at(e2);
                for (unsigned i1 = 0; i1 < SLOTS; i1++) {
                    uint64_t e = LOAD(l1[i1]);
                    if (!(e & E_PRESENT) || ((e & E_TYPE) >> E_TYPE_SHIFT) != from)
                        continue;
                    hits++;
                    if (how == REWRITE)
                        STORE(l1[i1], with_type(e, to));
                    else if (how == REWRITE_LOCKED)
                        entry_writer(&l1[i1], with_type(e, to));
                }
            }
        }
    }
    return hits;
}

static int run_sweep(unsigned reps, size_t leaves)
{
    size_t l2n = (leaves + SLOTS - 1) / SLOTS;
    size_t l3n = (l2n + SLOTS - 1) / SLOTS;
    if (l3n > SLOTS) {
        fprintf(stderr, "shapes: sweep: at most %u leaf tables\n", SLOTS * SLOTS * SLOTS);
        return 2;
    }
    size_t pages = 1 + l3n + l2n + leaves;
    pool = grab(pages * SLOTS * sizeof(uint64_t));
    uint32_t *where = scrambled_indices(pages); /* table k lives in pool page where[k] */
    size_t k = 0;
    uint64_t root = (uint64_t)where[k++] << 12;
    uint64_t *l4 = table_at(root);
    for (size_t a = 0; a < l3n; a++) {
        uint64_t e3t = ((uint64_t)where[k++] << 12) | E_PRESENT | E_RIGHTS;
        l4[a] = e3t;
        uint64_t *l3 = table_at(e3t);
        for (size_t b = 0; b < SLOTS && a * SLOTS + b < l2n; b++) {
            uint64_t e2t = ((uint64_t)where[k++] << 12) | E_PRESENT | E_RIGHTS;
            l3[b] = e2t;
            uint64_t *l2 = table_at(e2t);
            size_t first_leaf = (a * SLOTS + b) * SLOTS;
            for (size_t c = 0; c < SLOTS && first_leaf + c < leaves; c++) {
                uint64_t e1t = ((uint64_t)where[k++] << 12) | E_PRESENT | E_RIGHTS;
                l2[c] = e1t;
                uint64_t *l1 = table_at(e1t);
                size_t base = (first_leaf + c) * SLOTS;
                for (unsigned d = 0; d < SLOTS; d++) /* scattered frame numbers, unused */
                    l1[d] = with_type((((base + d) * 0x9e3779b1ull << 12) & E_FRAME) | E_PRESENT,
                                      T_PLAIN);
            }
        }
    }
    uint64_t entries = (uint64_t)leaves * SLOTS;
    unsigned now = T_PLAIN; /* the type of every leaf entry; T_PLAIN ^ 1 == T_TRACKED */
    for (unsigned r = 0; r <= reps; r++) {
        /* Each timed pass follows an untimed pass of its own kind, so that it finds the
         * caches as a long sweep of that kind leaves them: a rewriting pass pays for writing
         * back the lines the rewriting pass before it dirtied, a read-only pass does not. */
        uint64_t none = sweep(root, READ_ONLY, T_ABSENT_TYPE, T_ABSENT_TYPE);
        uint64_t t0 = clock_ns();
        none += sweep(root, READ_ONLY, T_ABSENT_TYPE, T_ABSENT_TYPE);
        uint64_t t1 = clock_ns();
        uint64_t plain = sweep(root, REWRITE, now, now ^ 1);
        now ^= 1;
        uint64_t t2 = clock_ns();
        plain += sweep(root, REWRITE, now, now ^ 1);
        now ^= 1;
        uint64_t t3 = clock_ns();
        uint64_t locked = sweep(root, REWRITE_LOCKED, now, now ^ 1);
        now ^= 1;
        uint64_t t4 = clock_ns();
        if (none != 0 || plain != 2 * entries || locked != entries) {
            fprintf(stderr, "shapes: sweep: wrong match counts\n");
            return 1;
        }
        if (r == 0)
            continue;
        printf("sweep entries=%llu read_ns=%llu write_ns=%llu locked_ns=%llu\n",
               (unsigned long long)entries, (unsigned long long)(t1 - t0),
               (unsigned long long)(t3 - t2), (unsigned long long)(t4 - t3));
        fflush(stdout);
    }
    return flush_requests != 0;
}

/* ---------------------------------------------------------- (c) bitmap copy and zero */

static int run_bitmap(unsigned reps, size_t pages)
{
    unsigned char *leaves = grab(pages * PAGE_BYTES);
    unsigned char *out = grab(pages * PAGE_BYTES);
    uint32_t *order = scrambled_indices(pages);
    for (unsigned r = 0; r <= reps; r++) {
        for (size_t i = 0; i < pages; i++) /* untimed: dirty bits to copy */
            memset(leaves + (size_t)i * PAGE_BYTES, 0x5a ^ (int)r, PAGE_BYTES);
        uint64_t t0 = clock_ns();
        for (size_t i = 0; i < pages; i++)
            memcpy(out + i * PAGE_BYTES, leaves + (size_t)order[i] * PAGE_BYTES, PAGE_BYTES);
        uint64_t t1 = clock_ns();
        for (size_t i = 0; i < pages; i++)
            memset(leaves + (size_t)order[i] * PAGE_BYTES, 0, PAGE_BYTES);
        uint64_t t2 = clock_ns();
        if (out[(pages - 1) * PAGE_BYTES] != (unsigned char)(0x5a ^ (int)r) || leaves[0] != 0) {
            fprintf(stderr, "shapes: bitmap: copy or zero went wrong\n");
            return 1;
        }
        for (size_t i = 0; i < pages; i++) /* untimed: only the last word is non-zero */
            leaves[(size_t)i * PAGE_BYTES + PAGE_BYTES - 1] = 1;
        /* the PoD zero check's shape: read word by word until a non-zero one */
        uint64_t t3 = clock_ns();
        size_t found = 0;
        for (size_t i = 0; i < pages; i++) {
            const volatile uint64_t *w = (const uint64_t *)(leaves + (size_t)order[i] * PAGE_BYTES);
            size_t j = 0;
            while (j < PAGE_BYTES / 8 && w[j] == 0)
                j++;
            found += j < PAGE_BYTES / 8;
        }
        uint64_t t4 = clock_ns();
        if (found != pages) {
            fprintf(stderr, "shapes: bitmap: scan went wrong\n");
            return 1;
        }
        if (r == 0)
            continue;
        printf("bitmap bytes=%llu copy_ns=%llu zero_ns=%llu scan_ns=%llu\n",
               (unsigned long long)pages * PAGE_BYTES, (unsigned long long)(t1 - t0),
               (unsigned long long)(t2 - t1), (unsigned long long)(t4 - t3));
        fflush(stdout);
    }
    return 0;
}

/* ----------------------------------------------------------- (d) hash-chain unlinks */

#define BUCKETS 251u

struct record { /* 32 bytes, the size of a page descriptor */
    struct record *next;
    uint64_t key;
    uint64_t kind;
    uint64_t spare;
};

static unsigned bucket_of(uint64_t key)
{
    return (unsigned)(((key * 0x9e3779b97f4a7c15ull) >> 29) % BUCKETS);
}

static int run_hash(unsigned reps, size_t n, size_t victims)
{
    if (victims > n)
        victims = n;
    size_t frames = 4 * n; /* the records are scattered over a larger descriptor table */
    struct record *table = grab(frames * sizeof *table);
    uint32_t *chosen = scrambled_indices(frames);
    struct record *heads[BUCKETS];
    for (size_t i = 0; i < n; i++) {
        table[chosen[i]].key = chosen[i];
        table[chosen[i]].kind = 1;
    }
    for (unsigned r = 0; r <= reps; r++) {
        memset(heads, 0, sizeof heads);
        scramble(chosen, n); /* insertion order */
        for (size_t i = 0; i < n; i++) {
            struct record *x = &table[chosen[i]];
            unsigned b = bucket_of(x->key);
            x->next = heads[b];
            heads[b] = x;
        }
        scramble(chosen, n); /* deletion order, unrelated to chain position */
        uint64_t hops = 0;
        uint64_t t0 = clock_ns();
        for (size_t i = 0; i < victims; i++) {
            struct record *x = &table[chosen[i]];
            unsigned b = bucket_of(x->key);
            struct record *p = heads[b];
            if (p == x) {
                heads[b] = x->next;
            } else {
                while (p->next != x) {
                    p = p->next;
                    hops++;
                }
                p->next = x->next;
            }
            x->next = NULL;
        }
        uint64_t t1 = clock_ns();
        if (r == 0)
            continue;
        printf("hash records=%llu deleted=%llu hops=%llu ns=%llu\n", (unsigned long long)n,
               (unsigned long long)victims, (unsigned long long)hops,
               (unsigned long long)(t1 - t0));
        fflush(stdout);
    }
    return 0;
}

/* ------------------------------------------------------ (e) atomic reference drops */

struct frame_desc { /* 32 bytes */
    uint64_t refs;      /* general reference count */
    uint64_t type_refs; /* type reference count, a validated flag above it */
    uint64_t owner;
    uint64_t spare;
};

#define REF_COUNT 0x000000ffffffffffull
#define TYPE_VALID (1ull << 62)

static void drop_type_ref(struct frame_desc *f)
{
    uint64_t seen = LOAD(f->type_refs), want;
    do {
        want = seen - 1;
        if ((want & REF_COUNT) == 0)
            want &= ~TYPE_VALID;
    } while (!__atomic_compare_exchange_n(&f->type_refs, &seen, want, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
}

static void drop_ref(struct frame_desc *f)
{
    uint64_t seen = LOAD(f->refs), want;
    do {
        want = seen - 1;
    } while (!__atomic_compare_exchange_n(&f->refs, &seen, want, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    if ((want & REF_COUNT) == 0)
        f->owner = 0; /* would free the frame; never reached here */
}

static int run_refs(unsigned reps, size_t frames)
{
    size_t pages = (frames + SLOTS - 1) / SLOTS;
    struct frame_desc *desc = grab(frames * sizeof *desc);
    uint64_t *maps = grab(pages * SLOTS * sizeof *maps);
    uint32_t *target = scrambled_indices(frames);
    for (size_t i = 0; i < frames; i++) {
        desc[i].refs = 1ull << 32;
        desc[i].type_refs = TYPE_VALID | (1ull << 32);
        desc[i].owner = 1;
        maps[i] = ((uint64_t)target[i] << 12) | E_PRESENT | E_RIGHTS;
    }
    for (unsigned r = 0; r <= reps; r++) {
        uint64_t dropped = 0;
        uint64_t t0 = clock_ns();
        for (size_t p = 0; p < pages; p++) {
            uint64_t *l1 = maps + p * SLOTS;
            for (unsigned i = 0; i < SLOTS; i++) {
                uint64_t e = LOAD(l1[i]);
                if (!(e & E_PRESENT))
                    continue;
                struct frame_desc *f = &desc[(e & E_FRAME) >> 12];
                drop_type_ref(f);
                drop_ref(f);
                dropped++;
            }
        }
        uint64_t t1 = clock_ns();
        if (r == 0)
            continue;
        printf("refs entries=%llu ns=%llu\n", (unsigned long long)dropped,
               (unsigned long long)(t1 - t0));
        fflush(stdout);
    }
    return 0;
}

/* ------------------------------------------------------ (f) free list pop and push */

struct page_desc { /* 32 bytes; list links as 32-bit descriptor numbers */
    uint32_t next;
    uint32_t prev;
    uint32_t owner;
    uint32_t flags;
    uint64_t refs;
    uint64_t type_refs;
};

struct page_list {
    uint32_t head;
    uint32_t tail;
    uint64_t count;
};

static uint32_t list_pop(struct page_desc *t, struct page_list *l)
{
    uint32_t pg = l->head;
    if (pg == NIL)
        return NIL;
    uint32_t nx = t[pg].next;
    l->head = nx;
    if (nx == NIL)
        l->tail = NIL;
    else
        t[nx].prev = NIL;
    t[pg].next = t[pg].prev = NIL;
    t[pg].owner = 1;
    l->count--;
    return pg;
}

static void list_push(struct page_desc *t, struct page_list *l, uint32_t pg)
{
    t[pg].owner = 0;
    t[pg].next = NIL;
    t[pg].prev = l->tail;
    if (l->tail == NIL)
        l->head = pg;
    else
        t[l->tail].next = pg;
    l->tail = pg;
    l->count++;
}

static int run_freelist(unsigned reps, size_t n)
{
    size_t frames = 4 * n;
    struct page_desc *desc = grab(frames * sizeof *desc);
    uint32_t *chosen = scrambled_indices(frames);
    uint32_t *taken = grab(n * sizeof *taken);
    struct page_list free_list = { NIL, NIL, 0 };
    for (size_t i = 0; i < n; i++)
        list_push(desc, &free_list, chosen[i]);
    for (unsigned r = 0; r <= reps; r++) {
        uint64_t t0 = clock_ns();
        for (size_t i = 0; i < n; i++)
            taken[i] = list_pop(desc, &free_list);
        uint64_t t1 = clock_ns();
        scramble(taken, n); /* pages come back in another order */
        uint64_t t2 = clock_ns();
        for (size_t i = 0; i < n; i++)
            list_push(desc, &free_list, taken[i]);
        uint64_t t3 = clock_ns();
        if (free_list.count != n || taken[0] == NIL) {
            fprintf(stderr, "shapes: freelist: lost a page\n");
            return 1;
        }
        if (r == 0)
            continue;
        printf("freelist pages=%llu pop_ns=%llu push_ns=%llu\n", (unsigned long long)n,
               (unsigned long long)(t1 - t0), (unsigned long long)(t3 - t2));
        fflush(stdout);
    }
    return 0;
}

/* ----------------------------------------------------------------------------- main */

static int number(const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    size_t reps, seed, size, size2 = 0;
    if (argc < 5 || number(argv[2], 1, 1000, &reps) || number(argv[3], 1, SIZE_MAX, &seed) ||
        number(argv[4], 1, 1u << 30, &size) ||
        (argc > 5 && number(argv[5], 1, 1u << 30, &size2))) {
        fprintf(stderr, "usage: shapes sweep|bitmap|hash|refs|freelist REPS SEED SIZE [SIZE2]\n");
        return 2;
    }
    prng ^= (uint64_t)seed * 0x9e3779b97f4a7c15ull;
    if (prng == 0)
        prng = 1;
    const char *k = argv[1];
    if (strcmp(k, "sweep") == 0)
        return run_sweep((unsigned)reps, size);
    if (strcmp(k, "bitmap") == 0)
        return run_bitmap((unsigned)reps, size);
    if (strcmp(k, "hash") == 0)
        return run_hash((unsigned)reps, size, size2 ? size2 : size);
    if (strcmp(k, "refs") == 0)
        return run_refs((unsigned)reps, size);
    if (strcmp(k, "freelist") == 0)
        return run_freelist((unsigned)reps, size);
    fprintf(stderr, "shapes: unknown kernel %s\n", k);
    return 2;
}

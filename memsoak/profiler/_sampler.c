/* memsoak.profiler._memsoak_sampler: a sampled allocation tracker for the memsoak hook.
 *
 * Wraps CPython's object and mem allocator domains (PyMem_GetAllocator / PyMem_SetAllocator, the
 * documented way to hook allocations at run time; tracemalloc does the same). Allocations are
 * sampled as a Poisson process over allocated bytes: a countdown of exponentially distributed gaps
 * (mean `sample_bytes`) is decremented by each allocation's size, and the allocation that crosses
 * it is sampled. A block of s bytes is therefore sampled with probability p = 1 - exp(-s/mean);
 * each sample carries the weights s/p (bytes) and 1/p (blocks), which makes sums of weights
 * unbiased estimates of the bytes and blocks they stand for.
 *
 * For a sampled block the Python stack (up to `max_frames`, innermost first) is read and interned,
 * and the block goes into a pointer table until it is freed: the live sampled heap by traceback
 * and the cumulative sampled allocations by traceback are kept as running sums.
 *
 * Threads: the object and mem domains are only ever called with the GIL held (CPython 3.11-3.13,
 * default builds), so the GIL serialises every access to the state below; the raw domain (callable
 * without the GIL) is not wrapped. The Python stack is read without allocating and without running
 * any Python code: the thread's interpreter frames are walked read-only, the way tracemalloc does
 * (materialising frame objects from inside an allocator could trigger a garbage collection on 3.11).
 * Free path: one bit of an 8 KB filter (clear for nearly every free), else one open-addressing
 * lookup in the table of sampled pointers.
 * Fork: the child inherits a consistent table (fork happens with the GIL held) and reseeds.
 * Fails closed: when its own memory cannot be had, sampling stops (frees are still honoured) and
 * `stats()["failed"]` says why; the engine's allocations always go through untouched.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define MS_SUPPORTED 1
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#else
#define MS_SUPPORTED 0
#endif

#define MS_MAX_FRAMES 128
#define MS_NDOMAINS 2

typedef struct {
    PyObject *filename; /* strong reference (held by the interned traceback) */
    int lineno;
} ms_frame;

typedef struct {
    uint64_t hash;
    uint64_t live_bytes;       /* sum of byte weights of the live samples */
    uint64_t live_count_milli; /* sum of block weights x 1000 */
    uint64_t live_samples;
    uint64_t total_bytes;      /* the same, cumulative over every sample taken */
    uint64_t total_count_milli;
    uint64_t total_samples;
    uint32_t nframes;
    ms_frame frames[];         /* innermost first */
} ms_traceback;

typedef struct {
    ms_traceback *tb;
    uint64_t wbytes;
    uint64_t wcount_milli;
} ms_entry; /* the value of a pointer-table slot; its key lives in a separate compact array */

typedef struct {
    PyMemAllocatorDomain domain;
    PyMemAllocatorEx orig;
    int installed;
} ms_domain;

static ms_domain D[MS_NDOMAINS] = {{PYMEM_DOMAIN_MEM}, {PYMEM_DOMAIN_OBJ}};

static struct {
    int sampling;          /* taking samples now */
    int busy;              /* reentrancy guard (GIL-protected) */
    int failed;
    char reason[200];
    int64_t countdown;     /* bytes until the next sample */
    double mean;           /* sample_bytes */
    int max_frames;
    size_t max_tracebacks;
    uint64_t rng;
    /* pointer table: keys (0 = empty) apart from values, so that a free probes 8-byte slots */
    uintptr_t *keys;
    ms_entry *ptrs;
    size_t ptr_cap;        /* power of two */
    size_t ptr_count;
    /* traceback table (interning) */
    ms_traceback **tbs;
    size_t tb_cap;
    size_t tb_count;
    ms_traceback *overflow;     /* where samples go once max_tracebacks is reached */
    ms_traceback *no_frame;     /* samples taken with no Python frame on the stack */
    PyObject *overflow_name, *no_frame_name;
    uint64_t own_bytes;
    uint64_t samples, sampled_frees, overflowed;
    uint64_t live_wbytes;       /* running total of live byte weights */
    uint64_t started_ns;
    ms_frame scratch[MS_MAX_FRAMES];
} S;

static int atfork_registered = 0;
static uint64_t table_generation; /* bumped whenever the tables are cleared (snapshot copies check it) */

/* ------------------------------------------------------------------ small helpers */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void reseed(uint64_t extra) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    S.rng ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^ extra;
    (void)splitmix64(&S.rng);
}

static int64_t next_gap(void) {
    /* u uniform in [0, 1): gap = -mean * ln(1 - u), exponential with the given mean */
    double u = (double)(splitmix64(&S.rng) >> 11) * (1.0 / 9007199254740992.0);
    double gap = -S.mean * log1p(-u);
    if (!(gap < 9.0e18)) gap = 9.0e18;
    return (int64_t)gap + 1;
}

static void *own_calloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p != NULL) S.own_bytes += n * size;
    return p;
}

static void own_free(void *p, size_t size) {
    if (p != NULL) {
        free(p);
        S.own_bytes -= size;
    }
}

static void fail_closed(const char *why) {
    S.sampling = 0;
    S.countdown = INT64_MAX;
    if (!S.failed) {
        S.failed = 1;
        snprintf(S.reason, sizeof S.reason, "%s", why);
    }
}

static inline size_t ptr_slot(uintptr_t p, size_t cap) {
    return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

/* ------------------------------------------------------------------ the free filter
 *
 * Every free and realloc asks "was this block sampled?". The answer is almost always no, and the
 * pointer table that knows for sure grows with the live heap (tens of KB for a GB heap: a cache
 * miss per free). So a free first tests one bit of a fixed 8 KB bitmap (own hash), set for each
 * sampled pointer: a clear bit (nearly every free) means "not sampled" and the free goes straight
 * on; a set bit sends it to the table. Bits are not cleared on forget (another sample may share
 * them); the bitmap is rebuilt from the table once the bits left by freed samples outnumber the
 * live ones (amortised: one 8 KB pass per as many sampled frees as there are live samples). */

/* the line cache of frame_line() (below, with the stack walk) */
#define MS_LINE_CACHE 2048
typedef struct {
    PyObject *linetable; /* strong reference: see frame_line() */
    int lasti, firstlineno, line;
} ms_line_slot;
static ms_line_slot line_cache[MS_LINE_CACHE];
static uint64_t line_hits, line_misses;

#define MS_FILTER_BITS 65536
static uint64_t filter[MS_FILTER_BITS / 64];
static size_t filter_stale; /* sampled frees since the last rebuild */
static uint64_t filter_rebuilds;

static inline size_t filter_bit(uintptr_t p) {
    /* the address in 16-byte units, modulo 1 MiB: no hash, so frees of neighbouring blocks (a
     * pymalloc pool) test neighbouring bits, one cache line the allocator is touching anyway, not a
     * random line of the 8 KB; the false-positive rate stays (live samples) / 65536 */
    return (size_t)((p >> 4) & (MS_FILTER_BITS - 1));
}

static inline int filter_maybe(uintptr_t p) {
    size_t b = filter_bit(p);
    return (int)((filter[b >> 6] >> (b & 63)) & 1);
}

static inline void filter_set(uintptr_t p) {
    size_t b = filter_bit(p);
    filter[b >> 6] |= (uint64_t)1 << (b & 63);
}

static void filter_rebuild(void) {
    memset(filter, 0, sizeof filter);
    for (size_t i = 0; i < S.ptr_cap; i++)
        if (S.keys[i]) filter_set(S.keys[i]);
    filter_stale = 0;
    filter_rebuilds++;
}

/* ------------------------------------------------------------------ the pointer table */

#define MS_MIN_PTR_CAP 256

static int ptr_grow(void) {
    size_t cap = S.ptr_cap ? S.ptr_cap * 2 : MS_MIN_PTR_CAP;
    if (cap > ((size_t)1 << 26)) return -1;
    uintptr_t *keys = own_calloc(cap, sizeof(uintptr_t));
    ms_entry *vals = own_calloc(cap, sizeof(ms_entry));
    if (keys == NULL || vals == NULL) {
        own_free(keys, keys ? cap * sizeof(uintptr_t) : 0);
        own_free(vals, vals ? cap * sizeof(ms_entry) : 0);
        return -1;
    }
    for (size_t i = 0; i < S.ptr_cap; i++) {
        if (S.keys[i]) {
            size_t j = ptr_slot(S.keys[i], cap);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = S.keys[i];
            vals[j] = S.ptrs[i];
        }
    }
    own_free(S.keys, S.ptr_cap * sizeof(uintptr_t));
    own_free(S.ptrs, S.ptr_cap * sizeof(ms_entry));
    S.keys = keys;
    S.ptrs = vals;
    S.ptr_cap = cap;
    return 0;
}

static void entry_unaccount(ms_entry *e) {
    ms_traceback *tb = e->tb;
    tb->live_bytes -= e->wbytes;
    tb->live_count_milli -= e->wcount_milli;
    tb->live_samples -= 1;
    S.live_wbytes -= e->wbytes;
}

/* remove slot i, shifting the following run back (linear probing without tombstones) */
static void ptr_remove_slot(size_t i) {
    size_t mask = S.ptr_cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!S.keys[j]) break;
        size_t home = ptr_slot(S.keys[j], S.ptr_cap);
        /* can the entry at j move to i? only if its home is not cyclically within (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            S.keys[i] = S.keys[j];
            S.ptrs[i] = S.ptrs[j];
            i = j;
        }
    }
    S.keys[i] = 0;
    S.ptrs[i].tb = NULL;
    S.ptr_count--;
}

static void forget(void *ptr) {
    if (S.ptr_count == 0) return; /* also: no table at all (stopped) */
    uintptr_t p = (uintptr_t)ptr;
    size_t mask = S.ptr_cap - 1;
    size_t i = ptr_slot(p, S.ptr_cap);
    uintptr_t key;
    while ((key = S.keys[i]) != 0) {
        if (key == p) {
            entry_unaccount(&S.ptrs[i]);
            S.sampled_frees++;
            ptr_remove_slot(i);
            if (++filter_stale > S.ptr_count + 64) filter_rebuild();
            return;
        }
        i = (i + 1) & mask;
    }
}

static int ptr_insert(void *ptr, ms_traceback *tb, uint64_t wbytes, uint64_t wcount) {
    if ((S.ptr_count + 1) * 4 > S.ptr_cap && ptr_grow() < 0) return -1; /* load <= 1/4: short probes */
    uintptr_t p = (uintptr_t)ptr;
    size_t mask = S.ptr_cap - 1;
    size_t i = ptr_slot(p, S.ptr_cap);
    while (S.keys[i] && S.keys[i] != p) i = (i + 1) & mask;
    if (S.keys[i] == p) {
        entry_unaccount(&S.ptrs[i]); /* a stale entry: the block was freed unseen */
    } else {
        S.ptr_count++;
    }
    S.keys[i] = p;
    filter_set(p);
    S.ptrs[i].tb = tb;
    S.ptrs[i].wbytes = wbytes;
    S.ptrs[i].wcount_milli = wcount;
    return 0;
}

/* ------------------------------------------------------------------ tracebacks */

static size_t tb_size(uint32_t nframes) {
    return sizeof(ms_traceback) + (size_t)nframes * sizeof(ms_frame);
}

static ms_traceback *tb_new(const ms_frame *frames, uint32_t n, uint64_t hash) {
    ms_traceback *tb = own_calloc(1, tb_size(n));
    if (tb == NULL) return NULL;
    tb->hash = hash;
    tb->nframes = n;
    for (uint32_t k = 0; k < n; k++) {
        tb->frames[k] = frames[k];
        Py_INCREF(frames[k].filename);
    }
    return tb;
}

static void tb_release(ms_traceback *tb) {
    if (tb == NULL) return;
    for (uint32_t k = 0; k < tb->nframes; k++) Py_DECREF(tb->frames[k].filename);
    own_free(tb, tb_size(tb->nframes));
}

static uint64_t frames_hash(const ms_frame *frames, uint32_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (uint32_t k = 0; k < n; k++) {
        h = (h ^ (uint64_t)(uintptr_t)frames[k].filename) * 0x100000001b3ull;
        h = (h ^ (uint64_t)(uint32_t)frames[k].lineno) * 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static int tb_grow(void) {
    size_t cap = S.tb_cap ? S.tb_cap * 2 : 1024;
    ms_traceback **table = own_calloc(cap, sizeof(ms_traceback *));
    if (table == NULL) return -1;
    for (size_t i = 0; i < S.tb_cap; i++) {
        ms_traceback *tb = S.tbs[i];
        if (tb) {
            size_t j = (size_t)tb->hash & (cap - 1);
            while (table[j]) j = (j + 1) & (cap - 1);
            table[j] = tb;
        }
    }
    own_free(S.tbs, S.tb_cap * sizeof(ms_traceback *));
    S.tbs = table;
    S.tb_cap = cap;
    return 0;
}

static ms_traceback *intern_traceback(const ms_frame *frames, uint32_t n) {
    if (n == 0) return S.no_frame;
    uint64_t h = frames_hash(frames, n);
    size_t mask = S.tb_cap - 1;
    size_t i = (size_t)h & mask;
    while (S.tbs[i]) {
        ms_traceback *tb = S.tbs[i];
        if (tb->hash == h && tb->nframes == n && memcmp(tb->frames, frames, n * sizeof(ms_frame)) == 0)
            return tb;
        i = (i + 1) & mask;
    }
    if (S.tb_count >= S.max_tracebacks) {
        S.overflowed++;
        return S.overflow;
    }
    if ((S.tb_count + 1) * 2 > S.tb_cap) {
        if (tb_grow() < 0) return NULL;
        return intern_traceback(frames, n);
    }
    ms_traceback *tb = tb_new(frames, n, h);
    if (tb == NULL) return NULL;
    S.tbs[i] = tb;
    S.tb_count++;
    return tb;
}

/* ------------------------------------------------------------------ the Python stack */

#if MS_SUPPORTED
static inline int frame_skipped(_PyInterpreterFrame *f) {
#if PY_VERSION_HEX >= 0x030C0000
    if (f->owner == FRAME_OWNED_BY_CSTACK) return 1; /* 3.12+: the C-stack entry/shim frames */
#endif
    return _PyFrame_IsIncomplete(f);
}

static inline PyCodeObject *frame_code(_PyInterpreterFrame *f) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *executable = f->f_executable;
    return (executable != NULL && PyCode_Check(executable)) ? (PyCodeObject *)executable : NULL;
#else
    return f->f_code;
#endif
}

/* The line of a frame: a small cache in front of PyCode_Addr2Line.
 *
 * PyCode_Addr2Line walks the code object's location table from its start, so its cost grows with
 * the offset: measured under callgrind on the demo engine (steady state, 200 requests), ~4,500
 * instructions per call, 24 frames per sample, 1.7% of the engine's instructions in all; the hot
 * paths of an engine repeat the same frames, so nearly every lookup is one already made.
 *
 * A line is a pure function of (location table, first line, instruction offset), so that is the
 * key, and each slot holds a strong reference to its location table (a bytes object): while the
 * slot holds it, no other object can take its address, so a hit is exact even after the code
 * object itself is gone. Bytes have no finalizer and no weak references, so releasing one on
 * eviction (here, inside an allocation, with the GIL) only frees memory. What the cache keeps
 * alive is bounded: at most MS_LINE_CACHE location tables (tens to hundreds of bytes each) of code
 * objects that died while cached; all of them are released when the tracker stops. */
static int frame_line(PyCodeObject *code, int lasti) {
    PyObject *linetable = code->co_linetable;
    uintptr_t key = ((uintptr_t)linetable >> 4) ^ ((uintptr_t)lasti * 0x9E3779B1u);
    ms_line_slot *slot = &line_cache[(key ^ (key >> 11)) & (MS_LINE_CACHE - 1)];
    if (slot->linetable == linetable && slot->lasti == lasti && slot->firstlineno == code->co_firstlineno) {
        line_hits++;
        return slot->line;
    }
    line_misses++;
    int line = PyCode_Addr2Line(code, lasti * (int)sizeof(_Py_CODEUNIT));
    PyObject *old = slot->linetable;
    Py_INCREF(linetable);
    slot->linetable = linetable;
    slot->lasti = lasti;
    slot->firstlineno = code->co_firstlineno;
    slot->line = line;
    Py_XDECREF(old); /* last: a dealloc comes back through w_free, the slot is consistent by then */
    return line;
}

static int capture_stack(ms_frame *out, int limit) {
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *tstate = PyThreadState_GetUnchecked();
#else
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
#endif
    if (tstate == NULL) return 0;
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = tstate->current_frame;
#else
    _PyInterpreterFrame *f = tstate->cframe ? tstate->cframe->current_frame : NULL;
#endif
    int n = 0;
    while (f != NULL && n < limit) {
        if (!frame_skipped(f)) {
            PyCodeObject *code = frame_code(f);
            if (code != NULL && code->co_filename != NULL) {
                int lasti = _PyInterpreterFrame_LASTI(f);
                int line = frame_line(code, lasti);
                out[n].filename = code->co_filename;
                out[n].lineno = line < 0 ? 0 : line;
                n++;
            }
        }
        f = f->previous;
    }
    return n;
}
#else
static int capture_stack(ms_frame *out, int limit) {
    (void)out;
    (void)limit;
    return 0;
}
#endif

/* ------------------------------------------------------------------ sampling */

static void take_sample(void *ptr, size_t size) {
    if (!S.sampling) {
        S.countdown = INT64_MAX;
        return;
    }
    if (S.busy) return; /* sampled at the next allocation after the guard */
    S.busy = 1;
    S.countdown = next_gap();
    double bytes = size ? (double)size : 1.0;
    double p = -expm1(-bytes / S.mean); /* this block's chance of being sampled */
    if (!(p > 1e-12)) p = 1e-12;
    uint64_t wbytes = (uint64_t)llround(bytes / p);
    uint64_t wcount = (uint64_t)llround(1000.0 / p);
    int n = capture_stack(S.scratch, S.max_frames);
    ms_traceback *tb = intern_traceback(S.scratch, (uint32_t)n);
    if (tb == NULL || ptr_insert(ptr, tb, wbytes, wcount) < 0) {
        fail_closed("out of memory for the sampler's own tables: sampling stopped");
        S.busy = 0;
        return;
    }
    tb->live_bytes += wbytes;
    tb->live_count_milli += wcount;
    tb->live_samples += 1;
    tb->total_bytes += wbytes;
    tb->total_count_milli += wcount;
    tb->total_samples += 1;
    S.live_wbytes += wbytes;
    S.samples++;
    S.busy = 0;
}

/* The hot path: the countdown first, so that an allocation which is not sampled is a tail call
 * to the wrapped allocator; only the one that crosses the countdown takes the slow path. */
#define MS_LIKELY(x) __builtin_expect(!!(x), 1)

static void *malloc_slow(ms_domain *d, size_t size) {
    void *ptr = d->orig.malloc(d->orig.ctx, size);
    if (ptr != NULL) take_sample(ptr, size);
    return ptr;
}

static void *calloc_slow(ms_domain *d, size_t nelem, size_t elsize) {
    void *ptr = d->orig.calloc(d->orig.ctx, nelem, elsize);
    if (ptr != NULL) take_sample(ptr, nelem * elsize);
    return ptr;
}

static __attribute__((noinline)) void free_slow(ms_domain *d, void *ptr);

/* One set of wrappers per domain, each reading its own domain's wrapped allocator from a fixed
 * address (D[IDX]) rather than through ctx: two loads fewer per call on the hot path. */
#define MS_WRAPPERS(IDX)                                                                            \
    static void *w_malloc_##IDX(void *ctx, size_t size) {                                           \
        (void)ctx;                                                                                  \
        if (MS_LIKELY((S.countdown -= (int64_t)size) > 0)) return D[IDX].orig.malloc(D[IDX].orig.ctx, size); \
        return malloc_slow(&D[IDX], size);                                                          \
    }                                                                                               \
    static void *w_calloc_##IDX(void *ctx, size_t nelem, size_t elsize) {                           \
        (void)ctx;                                                                                  \
        if (MS_LIKELY((S.countdown -= (int64_t)(nelem * elsize)) > 0))                              \
            return D[IDX].orig.calloc(D[IDX].orig.ctx, nelem, elsize);                              \
        return calloc_slow(&D[IDX], nelem, elsize);                                                 \
    }                                                                                               \
    static void *w_realloc_##IDX(void *ctx, void *old, size_t size) {                               \
        (void)ctx;                                                                                  \
        ms_domain *d = &D[IDX];                                                                     \
        int maybe = filter_maybe((uintptr_t)old);                                                   \
        if (MS_LIKELY((S.countdown -= (int64_t)size) > 0 && !maybe))                                \
            return d->orig.realloc(d->orig.ctx, old, size);                                         \
        void *ptr = d->orig.realloc(d->orig.ctx, old, size);                                        \
        if (ptr == NULL) return NULL; /* the old block is untouched */                              \
        if (old != NULL && maybe) forget(old);                                                      \
        if (S.countdown <= 0) take_sample(ptr, size);                                               \
        return ptr;                                                                                 \
    }                                                                                               \
    static void w_free_##IDX(void *ctx, void *ptr) {                                                \
        (void)ctx;                                                                                  \
        /* one bit of the 8 KB filter: clear for nearly every free (not sampled), a tail call */    \
        if (MS_LIKELY(!filter_maybe((uintptr_t)ptr))) return D[IDX].orig.free(D[IDX].orig.ctx, ptr); \
        free_slow(&D[IDX], ptr);                                                                    \
    }

static __attribute__((noinline)) void free_slow(ms_domain *d, void *ptr) {
    forget(ptr);
    d->orig.free(d->orig.ctx, ptr);
}

MS_WRAPPERS(0)
MS_WRAPPERS(1)

static const PyMemAllocatorEx WRAPPERS[MS_NDOMAINS] = {
    {&D[0], w_malloc_0, w_calloc_0, w_realloc_0, w_free_0},
    {&D[1], w_malloc_1, w_calloc_1, w_realloc_1, w_free_1},
};

/* ------------------------------------------------------------------ state */

static void clear_tables(void) {
    /* the pointer table goes first: releasing a traceback drops filename references, and a
     * string freed then comes back through w_free, which must not find entries pointing at
     * tracebacks already released */
    uintptr_t *keys = S.keys;
    ms_entry *ptrs = S.ptrs;
    size_t ptr_cap = S.ptr_cap;
    table_generation++; /* a snapshot copy taken before no longer points at live tracebacks */
    S.ptr_count = 0; /* first: from here on no free looks into the table */
    memset(filter, 0, sizeof filter);
    filter_stale = 0;
    S.keys = NULL;
    S.ptrs = NULL;
    S.ptr_cap = 0;
    own_free(keys, ptr_cap * sizeof(uintptr_t));
    own_free(ptrs, ptr_cap * sizeof(ms_entry));
    ms_traceback **tbs = S.tbs;
    size_t tb_cap = S.tb_cap;
    ms_traceback *overflow = S.overflow, *no_frame = S.no_frame;
    S.tbs = NULL;
    S.tb_cap = S.tb_count = 0;
    S.overflow = S.no_frame = NULL;
    for (size_t i = 0; i < tb_cap; i++) tb_release(tbs[i]);
    own_free(tbs, tb_cap * sizeof(ms_traceback *));
    tb_release(overflow);
    tb_release(no_frame);
    S.live_wbytes = S.samples = S.sampled_frees = S.overflowed = 0;
    for (size_t i = 0; i < MS_LINE_CACHE; i++) { /* the location tables the line cache holds */
        PyObject *linetable = line_cache[i].linetable;
        line_cache[i].linetable = NULL;
        Py_XDECREF(linetable);
    }
    line_hits = line_misses = 0;
}

static void after_fork_child(void) {
    reseed(0x5eed);
}

static int is_ours(ms_domain *d) {
    PyMemAllocatorEx current;
    PyMem_GetAllocator(d->domain, &current);
    return current.malloc == WRAPPERS[d - D].malloc && current.ctx == d;
}

/* ------------------------------------------------------------------ Python API */

static PyObject *ms_start(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"sample_bytes", "max_frames", "max_tracebacks", "seed", NULL};
    double mean = 512.0 * 1024;
    int max_frames = 32;
    Py_ssize_t max_tracebacks = 16384;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|dinK:start", names, &mean, &max_frames,
                                     &max_tracebacks, &seed))
        return NULL;
    if (!MS_SUPPORTED) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this Python is not supported by the allocation sampler (CPython 3.11-3.13 "
                        "with the GIL only)");
        return NULL;
    }
    if (!(mean >= 1.0 && mean <= 1e12)) {
        PyErr_SetString(PyExc_ValueError, "sample_bytes must be within 1..1e12");
        return NULL;
    }
    if (max_frames < 1 || max_frames > MS_MAX_FRAMES) {
        PyErr_Format(PyExc_ValueError, "max_frames must be within 1..%d", MS_MAX_FRAMES);
        return NULL;
    }
    if (max_tracebacks < 16) {
        PyErr_SetString(PyExc_ValueError, "max_tracebacks must be >= 16");
        return NULL;
    }
    if (S.sampling) {
        PyErr_SetString(PyExc_RuntimeError, "the allocation sampler is already running");
        return NULL;
    }
    if (!atfork_registered) {
        if (pthread_atfork(NULL, NULL, after_fork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return NULL;
        }
        atfork_registered = 1;
    }
    if (S.overflow_name == NULL) {
        S.overflow_name = PyUnicode_InternFromString("<memsoak sampler: traceback table full>");
        S.no_frame_name = PyUnicode_InternFromString("<no Python frame>");
        if (S.overflow_name == NULL || S.no_frame_name == NULL) return NULL;
    }
    /* a previous run's tables (stopped while another hook sat on top of ours) go first */
    S.busy = 1;
    clear_tables();
    S.failed = 0;
    S.reason[0] = 0;
    ms_frame one = {S.overflow_name, 0};
    S.overflow = tb_new(&one, 1, 0);
    one.filename = S.no_frame_name;
    S.no_frame = tb_new(&one, 1, 1);
    if (S.overflow == NULL || S.no_frame == NULL || tb_grow() < 0 || ptr_grow() < 0) {
        clear_tables();
        S.busy = 0;
        return PyErr_NoMemory();
    }
    S.mean = mean;
    S.max_frames = max_frames;
    S.max_tracebacks = (size_t)max_tracebacks;
    if (seed) S.rng = seed;
    else reseed((uint64_t)(uintptr_t)&S);
    S.countdown = next_gap();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    S.started_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    for (int k = 0; k < MS_NDOMAINS; k++) {
        ms_domain *d = &D[k];
        if (d->installed && is_ours(d)) continue; /* still in place from an earlier start */
        if (d->installed) continue;               /* chained under another hook: still called */
        PyMem_GetAllocator(d->domain, &d->orig);
        PyMemAllocatorEx wrapper = WRAPPERS[k];
        PyMem_SetAllocator(d->domain, &wrapper);
        d->installed = 1;
    }
    S.sampling = 1;
    S.busy = 0;
    Py_RETURN_NONE;
}

static PyObject *ms_stop(PyObject *self, PyObject *unused) {
    /* Stop sampling and drop the tables; unhook each domain where ours is still on top. Where
     * another hook (tracemalloc) was installed over ours, ours stays in place as a pass-through:
     * removing it would remove that hook too. */
    int kept = 0;
    S.sampling = 0;
    S.countdown = INT64_MAX;
    S.busy = 1;
    for (int k = 0; k < MS_NDOMAINS; k++) {
        ms_domain *d = &D[k];
        if (!d->installed) continue;
        if (is_ours(d)) {
            PyMem_SetAllocator(d->domain, &d->orig);
            d->installed = 0;
        } else {
            kept++;
        }
    }
    clear_tables();
    S.busy = 0;
    return PyBool_FromLong(kept == 0);
}

static PyObject *ms_running(PyObject *self, PyObject *unused) {
    return PyBool_FromLong(S.sampling);
}

typedef struct {
    uint64_t live_bytes, live_count_milli, live_samples, total_bytes, total_count_milli, total_samples;
    const ms_traceback *tb; /* its frames: interned tracebacks never change and live until the tables are cleared */
} ms_row;

/* A consistent copy of the table's counters (libc memory), taken without any Python allocation so
 * that no other thread can change the table meanwhile; the Python rows are built from it
 * afterwards, in chunks (the GIL can change hands between them), with one shared
 * (filename, lineno) tuple per distinct frame. The frames are not copied: a row points at its
 * interned traceback, which stays as it is until the tables are cleared (stop, or a start after a
 * stop), and `generation` tells snapshot_rows when that happened in between. Copying the frames
 * and sizing the frame cache for every frame made a snapshot's transient C memory ~2 MB at 700
 * stacks of 32 frames, much of which glibc kept resident afterwards: a visible RSS step. */
typedef struct {
    ms_row *rows;
    size_t nrow;
    uint64_t generation;
    PyObject **cache_obj; /* (filename, lineno) tuples by slot, grown as distinct frames are met */
    ms_frame *cache_key;
    size_t cache_cap, cache_count;
} ms_copy;

static void copy_free(ms_copy *c) {
    if (c == NULL) return;
    for (size_t k = 0; k < c->cache_cap; k++) Py_XDECREF(c->cache_obj[k]);
    free(c->rows);
    free(c->cache_obj);
    free(c->cache_key);
    free(c);
}

static void copy_capsule_destructor(PyObject *capsule) {
    copy_free(PyCapsule_GetPointer(capsule, "memsoak_sampler.copy"));
}

static PyObject *ms_snapshot_copy(PyObject *self, PyObject *args) {
    /* snapshot_copy(only_live=False) -> (capsule, number of rows) */
    int only_live = 0;
    if (!PyArg_ParseTuple(args, "|p:snapshot_copy", &only_live)) return NULL;
    size_t ntb = S.tb_count + 2;
    ms_copy *c = calloc(1, sizeof(ms_copy));
    if (c != NULL) c->rows = calloc(ntb, sizeof(ms_row));
    if (c == NULL || c->rows == NULL) {
        copy_free(c);
        return PyErr_NoMemory();
    }
    c->generation = table_generation;
    for (size_t i = 0; i < S.tb_cap + 2; i++) {
        ms_traceback *tb = i < S.tb_cap ? S.tbs[i] : (i == S.tb_cap ? S.overflow : S.no_frame);
        if (tb == NULL || tb->total_samples == 0 || (only_live && tb->live_samples == 0)) continue;
        ms_row *row = &c->rows[c->nrow++];
        row->live_bytes = tb->live_bytes;
        row->live_count_milli = tb->live_count_milli;
        row->live_samples = tb->live_samples;
        row->total_bytes = tb->total_bytes;
        row->total_count_milli = tb->total_count_milli;
        row->total_samples = tb->total_samples;
        row->tb = tb;
    }
    /* from here on Python objects are built: the copy is ours alone */
    PyObject *capsule = PyCapsule_New(c, "memsoak_sampler.copy", copy_capsule_destructor);
    if (capsule == NULL) {
        copy_free(c);
        return NULL;
    }
    return Py_BuildValue("(Nn)", capsule, (Py_ssize_t)c->nrow);
}

static inline size_t frame_slot(const ms_frame *f, size_t cap) {
    return (size_t)((((uint64_t)(uintptr_t)f->filename >> 4) * 0x9E3779B97F4A7C15ull) ^
                    ((uint64_t)(uint32_t)f->lineno * 0xC2B2AE3D27D4EB4Full)) & (cap - 1);
}

static int frame_cache_grow(ms_copy *c) {
    size_t cap = c->cache_cap ? c->cache_cap * 2 : 256;
    PyObject **objs = calloc(cap, sizeof(PyObject *));
    ms_frame *keys = calloc(cap, sizeof(ms_frame));
    if (objs == NULL || keys == NULL) {
        free(objs);
        free(keys);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; k < c->cache_cap; k++) {
        if (c->cache_obj[k] == NULL) continue;
        size_t i = frame_slot(&c->cache_key[k], cap);
        while (objs[i] != NULL) i = (i + 1) & (cap - 1);
        objs[i] = c->cache_obj[k];
        keys[i] = c->cache_key[k];
    }
    free(c->cache_obj);
    free(c->cache_key);
    c->cache_obj = objs;
    c->cache_key = keys;
    c->cache_cap = cap;
    return 0;
}

static PyObject *frame_tuple(ms_copy *c, const ms_frame *f) {
    if (2 * (c->cache_count + 1) > c->cache_cap && frame_cache_grow(c) < 0) return NULL;
    size_t mask = c->cache_cap - 1;
    size_t i = frame_slot(f, c->cache_cap);
    while (c->cache_obj[i] != NULL) {
        if (c->cache_key[i].filename == f->filename && c->cache_key[i].lineno == f->lineno) {
            Py_INCREF(c->cache_obj[i]);
            return c->cache_obj[i];
        }
        i = (i + 1) & mask;
    }
    PyObject *pair = Py_BuildValue("(Oi)", f->filename, f->lineno);
    if (pair == NULL) return NULL;
    c->cache_key[i] = *f;
    c->cache_obj[i] = pair;
    c->cache_count++;
    Py_INCREF(pair);
    return pair;
}

static PyObject *ms_snapshot_rows(PyObject *self, PyObject *args) {
    /* snapshot_rows(capsule, start, stop) -> [(frames, live_bytes, live_count, live_samples,
     * total_bytes, total_count, total_samples)] for rows start..stop of a copy */
    PyObject *capsule;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "Onn:snapshot_rows", &capsule, &start, &stop)) return NULL;
    ms_copy *c = PyCapsule_GetPointer(capsule, "memsoak_sampler.copy");
    if (c == NULL) return NULL;
    if (c->generation != table_generation) {
        PyErr_SetString(PyExc_RuntimeError, "the allocation sampler was stopped or restarted while "
                                            "this snapshot was read: take it again");
        return NULL;
    }
    if (start < 0) start = 0;
    if (stop > (Py_ssize_t)c->nrow) stop = (Py_ssize_t)c->nrow;
    if (stop < start) stop = start;
    PyObject *result = PyList_New(stop - start);
    for (Py_ssize_t r = start; result != NULL && r < stop; r++) {
        ms_row *row = &c->rows[r];
        PyObject *stack = PyTuple_New(row->tb->nframes);
        for (uint32_t k = 0; stack != NULL && k < row->tb->nframes; k++) {
            PyObject *pair = frame_tuple(c, &row->tb->frames[k]);
            if (pair == NULL) {
                Py_CLEAR(stack);
                break;
            }
            PyTuple_SET_ITEM(stack, k, pair);
        }
        PyObject *item = stack == NULL ? NULL : Py_BuildValue(
            "(NKKKKKK)", stack, (unsigned long long)row->live_bytes,
            (unsigned long long)((row->live_count_milli + 500) / 1000), (unsigned long long)row->live_samples,
            (unsigned long long)row->total_bytes, (unsigned long long)((row->total_count_milli + 500) / 1000),
            (unsigned long long)row->total_samples);
        if (item == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, r - start, item);
    }
    return result;
}

static PyObject *ms_snapshot(PyObject *self, PyObject *args) {
    /* snapshot(only_live=False): every row at once (snapshot_copy, then snapshot_rows) */
    int only_live = 0;
    if (!PyArg_ParseTuple(args, "|p:snapshot", &only_live)) return NULL;
    PyObject *copy_args = Py_BuildValue("(i)", only_live);
    if (copy_args == NULL) return NULL;
    PyObject *copy = ms_snapshot_copy(self, copy_args);
    Py_DECREF(copy_args);
    if (copy == NULL) return NULL;
    PyObject *row_args = Py_BuildValue("(Onn)", PyTuple_GET_ITEM(copy, 0), (Py_ssize_t)0,
                                       PyLong_AsSsize_t(PyTuple_GET_ITEM(copy, 1)));
    PyObject *rows = row_args != NULL ? ms_snapshot_rows(self, row_args) : NULL;
    Py_XDECREF(row_args);
    Py_DECREF(copy);
    return rows;
}

static PyObject *ms_stats(PyObject *self, PyObject *unused) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    int installed = 0;
    for (int k = 0; k < MS_NDOMAINS; k++) installed += D[k].installed;
    return Py_BuildValue(
        "{s:O,s:d,s:i,s:n,s:K,s:K,s:K,s:n,s:K,s:K,s:K,s:O,s:s,s:i,s:d,s:K,s:K,s:K}",
        "running", S.sampling ? Py_True : Py_False, "sample_bytes", S.mean, "max_frames", S.max_frames,
        "max_tracebacks", (Py_ssize_t)S.max_tracebacks, "samples", (unsigned long long)S.samples,
        "sampled_frees", (unsigned long long)S.sampled_frees, "live_samples", (unsigned long long)S.ptr_count,
        "tracebacks", (Py_ssize_t)S.tb_count, "overflowed", (unsigned long long)S.overflowed,
        "own_bytes", (unsigned long long)S.own_bytes, "live_bytes_estimate", (unsigned long long)S.live_wbytes,
        "failed", S.failed ? Py_True : Py_False, "failure", S.reason, "domains_hooked", installed,
        "running_s", S.sampling ? (double)(now - S.started_ns) / 1e9 : 0.0,
        "filter_rebuilds", (unsigned long long)filter_rebuilds,
        "line_cache_hits", (unsigned long long)line_hits, "line_cache_misses", (unsigned long long)line_misses);
}

static PyObject *ms_live_bytes(PyObject *self, PyObject *unused) {
    if (!S.sampling) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong((unsigned long long)S.live_wbytes);
}

static PyObject *ms_supported(PyObject *self, PyObject *unused) {
    return PyBool_FromLong(MS_SUPPORTED);
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))ms_start, METH_VARARGS | METH_KEYWORDS,
     "start(sample_bytes=524288, max_frames=32, max_tracebacks=16384, seed=0): hook the object and "
     "mem domains and sample allocations (Poisson by bytes, mean sample_bytes)."},
    {"stop", ms_stop, METH_NOARGS,
     "stop() -> bool: stop sampling, drop the tables; True when the allocator hooks were removed "
     "(False: another hook sits on top, ours stays as a pass-through)."},
    {"running", ms_running, METH_NOARGS, "running() -> bool"},
    {"snapshot", ms_snapshot, METH_VARARGS,
     "snapshot(only_live=False) -> [(frames, live_bytes, live_count, live_samples, total_bytes, "
     "total_count, total_samples)]; bytes and counts are weighted estimates."},
    {"snapshot_copy", ms_snapshot_copy, METH_VARARGS,
     "snapshot_copy(only_live=False) -> (copy, nrows): a consistent copy of the table"},
    {"snapshot_rows", ms_snapshot_rows, METH_VARARGS,
     "snapshot_rows(copy, start, stop) -> rows start..stop of a copy, as snapshot() gives them"},
    {"stats", ms_stats, METH_NOARGS, "stats() -> dict of the sampler's counters and own memory"},
    {"live_bytes", ms_live_bytes, METH_NOARGS,
     "live_bytes() -> int | None: the estimated live bytes of every sampled traceback (None when stopped)"},
    {"supported", ms_supported, METH_NOARGS, "supported() -> bool: built for this Python's frames"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_memsoak_sampler",
                                    "memsoak's sampled allocation tracker (see memsoak/profiler/alloc_sampler.py)",
                                    -1, methods};

PyMODINIT_FUNC PyInit__memsoak_sampler(void) {
    return PyModule_Create(&module);
}

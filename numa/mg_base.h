/*
 * mg_base.h - the few definitions every layer shares.
 *
 * numa/ is the bottom layer of the library (engine -> migration ->
 * {queues, numa}; queues -> numa), so the shared base lives here: cache-line
 * alignment, branch hints, and the three kinds of broken-contract checks.
 *
 * A broken internal contract is a bug, not an error code:
 *   MG_ASSERT(c)            checked in every build but -DNDEBUG ones (cheap)
 *   MG_ASSERT_EXPENSIVE(c)  checked only with `make DEBUG=1`
 *   MG_BUG(fmt, ...)        always aborts with a message
 * Errors a caller can cause are returned as -errno instead (see mg_strerror).
 *
 * ThreadSanitizer (`make SAN=thread`) sees C11 atomics and pthreads, but not
 * standalone fences, nor Concurrency Kit's and liburcu's inline assembly and
 * volatile accesses.  Where an edge goes through those, the code tells TSan
 * what the edge is, next to the ORDER label it models:
 *   MG_TSAN_RELEASE(addr)    everything this thread did so far happens
 *                            before whatever follows a matching acquire;
 *   MG_TSAN_ACQUIRE(addr)    the matching acquire, on the same address;
 *   MG_TSAN_IGNORE_BEGIN()   the accesses up to MG_TSAN_IGNORE_END() are
 *   MG_TSAN_IGNORE_END()     not checked: a library's own protocol, whose
 *                            edge is then annotated as above, or the one
 *                            race an algorithm makes on purpose (pool.c I3).
 * All four are empty unless compiled with -fsanitize=thread (MG_TSAN is 1).
 * Futexes need none: a wake orders nothing (see mg_futex_wait).
 */
#ifndef MG_BASE_H
#define MG_BASE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "numa/mg_api.h"

#define MG_CACHE_LINE	 64
#define MG_CACHE_ALIGNED __attribute__((aligned(MG_CACHE_LINE)))

#define MG_LIKELY(x)	 __builtin_expect(!!(x), 1)
#define MG_UNLIKELY(x)	 __builtin_expect(!!(x), 0)

#define MG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MG_BUG(...)                                                    \
	do {                                                           \
		fprintf(stderr, "megaphone: BUG at %s:%d: ", __FILE__, \
			__LINE__);                                     \
		fprintf(stderr, __VA_ARGS__);                          \
		fputc('\n', stderr);                                   \
		abort();                                               \
	} while (0)

#ifndef NDEBUG
#define MG_ASSERT(c)                                        \
	do {                                                \
		if (MG_UNLIKELY(!(c)))                      \
			MG_BUG("assertion failed: %s", #c); \
	} while (0)
#else
#define MG_ASSERT(c) ((void)0)
#endif

#if defined(MG_DEBUG_EXPENSIVE) && MG_DEBUG_EXPENSIVE
#define MG_ASSERT_EXPENSIVE(c) MG_ASSERT(c)
#else
#define MG_ASSERT_EXPENSIVE(c) ((void)0)
#endif

#if defined(__SANITIZE_THREAD__)
#define MG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MG_TSAN 1
#endif
#endif
#ifndef MG_TSAN
#define MG_TSAN 0
#endif

#if MG_TSAN
/* The TSan runtime's annotation interface (sanitizer/tsan_interface.h). */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define MG_TSAN_ACQUIRE(addr)  __tsan_acquire((void *)(addr))
#define MG_TSAN_RELEASE(addr)  __tsan_release((void *)(addr))
#define MG_TSAN_IGNORE_BEGIN() __tsan_ignore_thread_begin()
#define MG_TSAN_IGNORE_END()   __tsan_ignore_thread_end()
#else
#define MG_TSAN_ACQUIRE(addr)  ((void)0)
#define MG_TSAN_RELEASE(addr)  ((void)0)
#define MG_TSAN_IGNORE_BEGIN() ((void)0)
#define MG_TSAN_IGNORE_END()   ((void)0)
#endif

static inline int
mg_is_pow2(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* log2 of a power of two, or of the next power of two above x (x >= 1). */
static inline unsigned
mg_log2_ceil(uint64_t x)
{
	return x <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(x - 1);
}

/*
 * calloc(@count, @size) on cache lines of its own: aligned to a line and
 * padded to whole lines, so no other allocation shares one (NULL if out of
 * memory or the size overflows; free()).  For line-aligned structures and
 * above all for what one thread writes on the data path: small calloc()s
 * made one after another lie side by side, and a line two CPUs write
 * bounces between them (each worker's 16-byte scratch record did, on every
 * record: ~10 ns a record with two workers).
 */
void *mg_calloc_lines(size_t count, size_t size);

/*
 * memcpy() of a record of @n bytes, n known only at run time: up to 32
 * bytes as two overlapping fixed-size copies the compiler inlines (a call
 * to memcpy costs more than such a record), more by memcpy().  The data
 * path copies every record this way.
 */
static inline void
mg_copy_small(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (n >= 16 && n <= 32) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8 && n < 16) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + n - 8, s + n - 8, 8);
	} else {
		__builtin_memcpy(d, s, n);
	}
}

/* memset(@dst, 0, @n), as mg_copy_small() copies. */
static inline void
mg_zero_small(void *dst, size_t n)
{
	unsigned char *d = dst;

	if (n >= 16 && n <= 32) {
		__builtin_memset(d, 0, 16);
		__builtin_memset(d + n - 16, 0, 16);
	} else if (n >= 8 && n < 16) {
		__builtin_memset(d, 0, 8);
		__builtin_memset(d + n - 8, 0, 8);
	} else {
		__builtin_memset(d, 0, n);
	}
}

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC, vDSO: no syscall). */
uint64_t mg_now_ns(void);

/*
 * How long the calling thread has been runnable without a CPU -- its run
 * queue delay, what other threads on its CPU took from it -- as the kernel
 * counts it (/proc/thread-self/schedstat).  mg_thread_wait_open() opens
 * that count for the calling thread: a descriptor any thread may pass to
 * mg_thread_wait_ns() (cumulative ns; UINT64_MAX if it cannot be read) and
 * the opener's owner closes; -1 where the kernel keeps no such count.
 * Context: not the data path (system calls).
 */
int mg_thread_wait_open(void);
uint64_t mg_thread_wait_ns(int fd);

/*
 * Sleep while *@word == @val, at most @timeout_ns (UINT64_MAX: no limit), as
 * a private futex.  It may also return early (a wake, a signal, a change of
 * the word before sleeping): callers loop over their condition.
 * Context: any thread but the data path; blocks.
 * Ordering: none: the wake is no edge.  What the woken thread reads next is
 * ordered by its own acquires (C11, or a channel's), never by the wake.
 */
void mg_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns);

/* Wake up to @n threads sleeping on @word.  A system call; never blocks. */
void mg_futex_wake(_Atomic uint32_t *word, int n);

#endif /* MG_BASE_H */

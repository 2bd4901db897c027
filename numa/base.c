/*
 * base.c - the out-of-line part of mg_base.h.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "numa/mg_base.h"

void *
mg_calloc_lines(size_t count, size_t size)
{
	size_t n;
	void *p;

	if (__builtin_mul_overflow(count, size, &n) ||
	    n > SIZE_MAX - MG_CACHE_LINE)
		return NULL;
	n = n ? (n + MG_CACHE_LINE - 1) & ~(size_t)(MG_CACHE_LINE - 1)
	      : MG_CACHE_LINE;
	p = aligned_alloc(MG_CACHE_LINE, n);
	if (p)
		memset(p, 0, n);
	return p;
}

uint64_t
mg_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer; it is the vDSO. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int
mg_thread_wait_open(void)
{
	return open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
}

/* The file is "<ns on a CPU> <ns waiting on a run queue> <slices>". */
uint64_t
mg_thread_wait_ns(int fd)
{
	char buf[96];
	uint64_t run, wait;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return UINT64_MAX;
	buf[n] = 0;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64, &run, &wait) != 2)
		return UINT64_MAX;
	return wait;
}

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	       "a futex word is 32 bits");

void
mg_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {(time_t)(timeout_ns / 1000000000ull),
			      (long)(timeout_ns % 1000000000ull)};

	/* EAGAIN (word changed), EINTR and ETIMEDOUT all mean "look again". */
	(void)syscall(SYS_futex, (void *)word, FUTEX_WAIT_PRIVATE, val,
		      timeout_ns == UINT64_MAX ? NULL : &ts, NULL, 0);
}

void
mg_futex_wake(_Atomic uint32_t *word, int n)
{
	(void)syscall(SYS_futex, (void *)word, FUTEX_WAKE_PRIVATE, n, NULL,
		      NULL, 0);
}

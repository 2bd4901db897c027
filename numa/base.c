/*
 * base.c - the out-of-line part of mg_base.h.
 */
#include <time.h>

#include "numa/mg_base.h"

uint64_t
mg_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer; it is the vDSO. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * mg_api.h - what the public header and every layer share: the export
 * attribute, the reserved timestamps and a few limits.
 *
 * A public fragment: it includes only the C library, and the installed
 * megaphone.h carries it inline (see engine/megaphone.h), so an application
 * compiles against one header.
 *
 * Timestamps are uint64_t.  A few values at the top are not times:
 *
 *   MG_TIME_MAX    the frontier of a stream that has ended ("no time is
 *                  left"); never a record's time.
 *   MG_TIME_NOW    as a time argument: the current epoch of the dataflow's
 *                  clock (see mg_push()).
 *   MG_TIME_ASAP   as a migration time: the earliest time the engine can
 *                  still take (see mg_migrate()).
 *
 * Record and migration times must be below MG_TIME_LIMIT (2^63 - 1): the
 * control frontier keeps its top bit for a submission in progress (see
 * migration/mg_router.h).
 */
#ifndef MG_API_H
#define MG_API_H

#include <stdint.h>

/* Marks the functions the shared library exports; everything else in it is
 * hidden (-fvisibility=hidden). */
#define MG_API		 __attribute__((visibility("default")))

#define MG_TIME_MAX	 UINT64_MAX
#define MG_TIME_NOW	 (UINT64_MAX - 1)
#define MG_TIME_ASAP	 (UINT64_MAX - 2)
#define MG_TIME_LIMIT	 ((1ull << 63) - 1)

#define MG_RECORD_MAX	 4096u /* largest record a stream may carry */
#define MG_BINS_LOG2_MIN 4     /* 2^4 .. 2^20 bins */
#define MG_BINS_LOG2_MAX 20
/* Largest pool reservation per (node, chunk size): 2^32 chunks of 128 B,
 * less 2 MiB (reservations are multiples of 2 MiB). */
#define MG_POOL_RESERVE_MAX ((1ull << 39) - (2ull << 20))

#endif /* MG_API_H */

/* error.c - mg_strerror and mg_version: the text of this library's return
 * codes, and its version. */
#include <errno.h>
#include <string.h>

#include "engine/megaphone.h"

const char *
mg_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of memory";
	case -EAGAIN:
		return "resource temporarily unavailable";
	case -ENOENT:
		return "no such entry";
	case -EBUSY:
		return "busy: already in progress";
	case -ETIME:
		return "too late: that time has already passed";
	case -EPIPE:
		return "closed: the producer or the dataflow has ended";
	case -ETIMEDOUT:
		return "timed out";
	case -ENODATA:
		return "end of stream: everything was delivered";
	case -ECANCELED:
		return "canceled: the run ended first";
	default:
		return err < 0 ? strerror(-err) : "unknown result";
	}
}

const char *
mg_version(void)
{
	return MG_VERSION;
}

/* error.c - mg_strerror: the text of this library's return codes. */
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
	default:
		return err < 0 ? strerror(-err) : "unknown result";
	}
}

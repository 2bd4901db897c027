/*
 * vbuf.c - growable buffers in private virtual reservations (MAP_NORESERVE):
 * a buffer grows by touching pages, never by a system call or malloc, so
 * the data path may grow one (struct vbuf in engine_pvt.h).
 */
#include <errno.h>
#include <sys/mman.h>

#include "engine/engine_pvt.h"

int
mg__vbuf_init(struct vbuf *v, size_t reserve)
{
	void *p = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	v->base = p;
	v->len = 0;
	v->reserved = reserve;
	return 0;
}

void
mg__vbuf_free(struct vbuf *v)
{
	if (v->base)
		munmap(v->base, v->reserved);
	v->base = NULL;
}

/*
 * plan.c - migration plans, plan files and strategies (see mg_plan.h).
 *
 * Plans.  A plan keeps its steps in time order, each step's moves sorted by
 * bin, and the owner of every bin after the last step (owner[]), against
 * which the next step's no-op moves are dropped.  mg_plan_add_step() and
 * the file parser share one path: the moves are copied, sorted (skipped
 * when already in bin order, as the map form and the strategies produce
 * them), checked for a repeated bin, stripped of no-ops, and only then is
 * the plan touched, so a failure at any point leaves it as it was.
 *
 * The batched strategy.  The moves form a bipartite multigraph: one edge
 * per moving bin, from its sender (left side) to its receiver (right side).
 * A step may use each worker at most once per side, so a step is a matching
 * and a schedule is a proper edge colouring; by König's theorem Δ colours
 * suffice, Δ the largest number of bins one worker sends or receives, and
 * no schedule can do with fewer.  We colour with alternating paths:
 *
 *   1. Merge vertices.  Workers on each side are packed, in index order,
 *      into groups whose degrees add up to at most Δ (next fit), and the
 *      groups are coloured instead of the workers.  A proper colouring of
 *      the merged graph is one of the original (a worker's edges are among
 *      its group's, which all differ in colour), its maximum degree is
 *      still Δ, and two consecutive groups hold more than Δ edges, so each
 *      side has at most 2E/Δ + 1 groups: the colour tables below take
 *      O(E + Δ) cells, not O(W·Δ).
 *   2. Colour the edges of one sender group after another.  Its k-th edge
 *      (u, v) gets colour a = k, which is free at u.  If a is taken at v,
 *      pick a colour b free at v and swap a and b along the path that
 *      starts at v with its a-edge and alternates b, a, b, ...  The path
 *      enters sender groups through a-edges, so it never reaches u (where
 *      a is free) and never changes the colours of the group being
 *      coloured; after the swap a is free at v as well.  A path is simple
 *      and visits each group at most once, so it has fewer than nl + nr
 *      edges.
 *   3. Free colours at receiver groups.  A receiver group v loses a colour
 *      only as the far end of a path (its b becomes a); that colour is
 *      pushed on v's free stack.  Otherwise colours are found by a cursor
 *      that only moves up.  Stack entries are checked when popped, since a
 *      colour may be taken again after it was pushed.  At most one push per
 *      edge and Δ cursor steps per group: finding b costs O(1) amortised.
 *
 * Time O(nbins + W + E·(nl + nr)) with nl + nr <= min(2W, 4E/Δ + 2), memory
 * O(E + W) besides the result.  Every colour is used at a worker of degree
 * Δ, so no step is empty and there are exactly Δ of them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mg_plan.h"
#include "numa/mg_base.h"

#define MAX_WORKERS UINT16_MAX
#define NONE	    UINT32_MAX
#define SPACE	    " \t\r\n\v\f" /* between tokens */

/* ---- plans ---------------------------------------------------------------- */

int
mg_plan_create(struct mg_plan **out, uint32_t nbins, uint32_t nworkers,
	       const uint16_t *start)
{
	struct mg_plan *p;
	uint32_t b;

	if (nbins == 0 || nworkers == 0 || nworkers > MAX_WORKERS)
		return -EINVAL;
	if (start)
		for (b = 0; b < nbins; b++)
			if (start[b] >= nworkers)
				return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->start = malloc(sizeof(p->start[0]) * (size_t)nbins);
	p->owner = malloc(sizeof(p->owner[0]) * (size_t)nbins);
	if (!p->start || !p->owner) {
		mg_plan_destroy(p);
		return -ENOMEM;
	}
	p->nbins = nbins;
	p->nworkers = nworkers;
	for (b = 0; b < nbins; b++)
		p->start[b] = start ? start[b] : (uint16_t)(b % nworkers);
	memcpy(p->owner, p->start, sizeof(p->owner[0]) * (size_t)nbins);
	*out = p;
	return 0;
}

void
mg_plan_destroy(struct mg_plan *p)
{
	uint32_t i;

	if (!p)
		return;
	for (i = 0; i < p->nsteps; i++)
		free(p->steps[i].moves);
	free(p->steps);
	free(p->start);
	free(p->owner);
	free(p);
}

const uint16_t *
mg_plan_final(const struct mg_plan *p)
{
	return p->owner;
}

static int
move_cmp(const void *a, const void *b)
{
	const struct mg_move *x = a, *y = b;

	return (x->bin > y->bin) - (x->bin < y->bin);
}

/*
 * The moves of a step, in bin order and without no-ops, as a new array in
 * *@kept (NULL when nothing is left), with room reserved in the plan for
 * one more step.  The moves' bins and workers must be in range.
 * Return: 0; -EINVAL if a bin appears twice (*@dup receives it); -ENOMEM.
 * The plan's contents do not change (its step array may grow).
 */
static int
step_prepare(struct mg_plan *p, const struct mg_move *moves, uint32_t n,
	     struct mg_move **kept, uint32_t *nkept, uint32_t *dup)
{
	struct mg_move *m, *shrunk;
	struct mg_step *steps;
	uint32_t i, k, cap;

	*kept = NULL;
	*nkept = 0;
	if (n == 0)
		return 0;
	m = malloc(sizeof(*m) * (size_t)n);
	if (!m)
		return -ENOMEM;
	memcpy(m, moves, sizeof(*m) * (size_t)n);
	for (i = 1; i < n && m[i - 1].bin < m[i].bin; i++)
		;
	if (i < n)
		qsort(m, n, sizeof(*m), move_cmp);
	for (i = 1; i < n; i++) {
		if (m[i - 1].bin == m[i].bin) {
			*dup = m[i].bin;
			free(m);
			return -EINVAL;
		}
	}
	for (i = 0, k = 0; i < n; i++) {
		MG_ASSERT(m[i].bin < p->nbins && m[i].worker < p->nworkers);
		if (p->owner[m[i].bin] != m[i].worker)
			m[k++] = m[i];
	}
	if (k == 0) {
		free(m);
		return 0;
	}
	if (p->nsteps == p->cap) {
		if (p->cap == UINT32_MAX) {
			free(m);
			return -ENOMEM;
		}
		cap = p->cap ? p->cap : 4;
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX : 2 * cap;
		steps = realloc(p->steps, sizeof(*steps) * (size_t)cap);
		if (!steps) {
			free(m);
			return -ENOMEM;
		}
		p->steps = steps;
		p->cap = cap;
	}
	if (k < n) {
		/* A map line may keep only a few of nbins moves. */
		shrunk = realloc(m, sizeof(*m) * (size_t)k);
		if (shrunk)
			m = shrunk;
	}
	*kept = m;
	*nkept = k;
	return 0;
}

/* Append a prepared step (takes @m); cannot fail. */
static void
step_commit(struct mg_plan *p, uint64_t time, struct mg_move *m, uint32_t n)
{
	struct mg_step *s;
	uint32_t i;

	if (n == 0)
		return;
	MG_ASSERT(p->nsteps < p->cap);
	MG_ASSERT(p->nsteps == 0 || time > p->steps[p->nsteps - 1].time);
	s = &p->steps[p->nsteps++];
	s->time = time;
	s->nmoves = n;
	s->moves = m;
	for (i = 0; i < n; i++)
		p->owner[m[i].bin] = (uint16_t)m[i].worker;
}

int
mg_plan_add_step(struct mg_plan *p, uint64_t time, const struct mg_move *moves,
		 uint32_t n)
{
	struct mg_move *kept;
	uint32_t i, nkept, dup;
	int rc;

	if (p->nsteps > 0 && time <= p->steps[p->nsteps - 1].time)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (moves[i].bin >= p->nbins || moves[i].worker >= p->nworkers)
			return -EINVAL;
	rc = step_prepare(p, moves, n, &kept, &nkept, &dup);
	if (rc)
		return rc;
	step_commit(p, time, kept, nkept);
	return 0;
}

/* ---- plan files ----------------------------------------------------------- */

struct parser {
	const char *path;
	unsigned long line;
	char *err;
	size_t errlen;
	struct mg_plan *plan;
	struct mg_move *moves; /* the current line's moves */
	size_t nmoves, cap;
};

/* "path:line: reason", or "path: reason" for line 0, into ps->err. */
static void __attribute__((format(printf, 3, 0)))
vreport(struct parser *ps, unsigned long line, const char *fmt, va_list ap)
{
	int n;

	if (!ps->err || ps->errlen == 0)
		return;
	if (line)
		n = snprintf(ps->err, ps->errlen, "%s:%lu: ", ps->path, line);
	else
		n = snprintf(ps->err, ps->errlen, "%s: ", ps->path);
	if (n >= 0 && (size_t)n < ps->errlen)
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
}

/* Report a problem of the current line.  Return: -EINVAL. */
static int __attribute__((format(printf, 2, 3)))
line_err(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ps, ps->line, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Report a problem of the whole file. */
static void __attribute__((format(printf, 2, 3)))
file_err(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ps, 0, fmt, ap);
	va_end(ap);
}

/*
 * A whole token of decimal digits (no sign, no base prefix, no spaces).
 * Return: 0; -EINVAL if it is not a number; -ERANGE above UINT64_MAX.
 */
static int
parse_u64(const char *tok, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)tok[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(tok, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

/* "2^12 bins", or "100 bins" when not a power of two. */
static const char *
bins_desc(char *buf, size_t len, uint32_t nbins)
{
	if (nbins > 1 && mg_is_pow2(nbins))
		snprintf(buf, len, "2^%u bins", mg_log2_ceil(nbins));
	else
		snprintf(buf, len, "%u bin%s", nbins, nbins == 1 ? "" : "s");
	return buf;
}

static int
number_err(struct parser *ps, int rc, const char *what, const char *tok)
{
	if (rc == -ERANGE)
		return line_err(ps, "%s '%s' is out of range", what, tok);
	return line_err(ps, "%s '%s' is not a number", what, tok);
}

static int
push_move(struct parser *ps, uint32_t bin, uint32_t worker)
{
	struct mg_move *m;
	size_t cap;

	if (ps->nmoves == ps->cap) {
		cap = ps->cap ? 2 * ps->cap : 64;
		m = realloc(ps->moves, sizeof(*m) * cap);
		if (!m)
			return -ENOMEM;
		ps->moves = m;
		ps->cap = cap;
	}
	ps->moves[ps->nmoves].bin = bin;
	ps->moves[ps->nmoves].worker = worker;
	ps->nmoves++;
	return 0;
}

/* One worker token for @bin; on success *@w is in range. */
static int
parse_worker(struct parser *ps, const char *tok, uint32_t bin, uint32_t *w)
{
	uint64_t v;
	int rc;

	rc = parse_u64(tok, &v);
	if (rc == -ERANGE)
		return line_err(ps, "bin %u: worker '%s' is out of range", bin,
				tok);
	if (rc)
		return line_err(ps, "bin %u: worker '%s' is not a number", bin,
				tok);
	if (v >= ps->plan->nworkers)
		return line_err(ps,
				"bin %u: worker %llu does not exist (%u "
				"worker%s)",
				bin, (unsigned long long)v, ps->plan->nworkers,
				ps->plan->nworkers == 1 ? "" : "s");
	*w = (uint32_t)v;
	return 0;
}

/* "<bin> <worker> ..." starting at @tok. */
static int
parse_pairs(struct parser *ps, char *tok, char **save)
{
	struct mg_plan *p = ps->plan;
	char desc[32];
	uint32_t bin, w;
	uint64_t v;
	int rc;

	for (; tok; tok = strtok_r(NULL, SPACE, save)) {
		rc = parse_u64(tok, &v);
		if (rc)
			return number_err(ps, rc, "bin", tok);
		if (v >= p->nbins)
			return line_err(
				ps, "bin %llu does not exist (%s)",
				(unsigned long long)v,
				bins_desc(desc, sizeof(desc), p->nbins));
		bin = (uint32_t)v;
		tok = strtok_r(NULL, SPACE, save);
		if (!tok)
			return line_err(ps, "bin %u has no worker", bin);
		rc = parse_worker(ps, tok, bin, &w);
		if (rc)
			return rc;
		if (ps->nmoves == UINT32_MAX)
			return line_err(ps, "too many moves in one step");
		rc = push_move(ps, bin, w);
		if (rc)
			return rc;
	}
	return 0;
}

/* "map <worker of bin 0> ..." after the "map" token. */
static int
parse_map(struct parser *ps, char **save)
{
	struct mg_plan *p = ps->plan;
	uint64_t bin = 0; /* also counts the workers named */
	uint32_t w;
	char *tok;
	int rc;

	for (; (tok = strtok_r(NULL, SPACE, save)) != NULL; bin++) {
		if (bin >= p->nbins)
			continue; /* only counted, for the message below */
		rc = parse_worker(ps, tok, (uint32_t)bin, &w);
		if (rc)
			return rc;
		/* Keep only real moves: a map line names every bin. */
		if (p->owner[bin] != w) {
			rc = push_move(ps, (uint32_t)bin, w);
			if (rc)
				return rc;
		}
	}
	if (bin != p->nbins)
		return line_err(ps,
				"map names %llu workers, expected %u (one per "
				"bin)",
				(unsigned long long)bin, p->nbins);
	return 0;
}

/*
 * One line, comment already cut off.  @prev: the time of the previous step
 * line, if @have_prev.
 */
static int
parse_line(struct parser *ps, char *line, uint64_t *prev, bool *have_prev)
{
	struct mg_move *kept;
	uint32_t nkept, dup;
	uint64_t time;
	char *tok, *save;
	int rc;

	tok = strtok_r(line, SPACE, &save);
	if (!tok)
		return 0; /* blank */
	rc = parse_u64(tok, &time);
	if (rc)
		return number_err(ps, rc, "time", tok);
	if (*have_prev && time <= *prev)
		return line_err(ps,
				"time %llu is not after the previous step "
				"(%llu)",
				(unsigned long long)time,
				(unsigned long long)*prev);
	ps->nmoves = 0;
	tok = strtok_r(NULL, SPACE, &save);
	if (!tok)
		return line_err(ps, "time %llu has no moves",
				(unsigned long long)time);
	if (strcmp(tok, "map") == 0)
		rc = parse_map(ps, &save);
	else
		rc = parse_pairs(ps, tok, &save);
	if (rc)
		return rc;
	rc = step_prepare(ps->plan, ps->moves, (uint32_t)ps->nmoves, &kept,
			  &nkept, &dup);
	if (rc == -EINVAL)
		return line_err(ps, "bin %u appears twice in one step", dup);
	if (rc)
		return rc;
	/*
	 * The plan's last step is at or before *prev (a line whose moves were
	 * all no-ops adds none), so this time is after it too.
	 */
	step_commit(ps->plan, time, kept, nkept);
	*prev = time;
	*have_prev = true;
	return 0;
}

int
mg_plan_parse_file(struct mg_plan **out, const char *path, uint32_t nbins,
		   uint32_t nworkers, const uint16_t *start, char *err,
		   size_t errlen)
{
	struct parser ps = {.path = path, .err = err, .errlen = errlen};
	char *line = NULL, *hash, ebuf[128];
	size_t linecap = 0;
	uint64_t prev = 0;
	bool have_prev = false;
	ssize_t len;
	FILE *f;
	int rc;

	rc = mg_plan_create(&ps.plan, nbins, nworkers, start);
	if (rc == -ENOMEM) {
		file_err(&ps, "out of memory");
		return rc;
	}
	if (rc) {
		file_err(&ps,
			 "bad bin count, worker count or start assignment");
		return rc;
	}
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		file_err(&ps, "%s", strerror_r(-rc, ebuf, sizeof(ebuf)));
		mg_plan_destroy(ps.plan);
		return rc;
	}
	for (;;) {
		errno = 0;
		len = getline(&line, &linecap, f);
		if (len < 0)
			break;
		ps.line++;
		if (memchr(line, '\0', (size_t)len)) {
			rc = line_err(&ps, "line contains a NUL byte");
			break;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		rc = parse_line(&ps, line, &prev, &have_prev);
		if (rc)
			break;
	}
	if (rc == 0 && len < 0 && errno == ENOMEM) {
		rc = -ENOMEM;
		file_err(&ps, "out of memory after line %lu", ps.line);
	} else if (rc == 0 && len < 0 && ferror(f)) {
		rc = -EIO;
		file_err(&ps, "read error after line %lu", ps.line);
	} else if (rc == 0 && !have_prev) {
		rc = -EINVAL;
		file_err(&ps, "empty plan");
	} else if (rc == -ENOMEM) {
		line_err(&ps, "out of memory");
	}
	fclose(f);
	free(line);
	free(ps.moves);
	if (rc) {
		mg_plan_destroy(ps.plan);
		return rc;
	}
	*out = ps.plan;
	return 0;
}

/* ---- strategies ----------------------------------------------------------- */

static const char *const strategy_names[] = {
	[MG_ALL_AT_ONCE] = "all-at-once",
	[MG_FLUID] = "fluid",
	[MG_BATCHED] = "batched",
};

int
mg_strategy_parse(const char *name, enum mg_strategy *out)
{
	size_t i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < MG_ARRAY_SIZE(strategy_names); i++) {
		if (strcmp(name, strategy_names[i]) == 0) {
			*out = (enum mg_strategy)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
mg_strategy_name(enum mg_strategy s)
{
	if ((unsigned)s >= MG_ARRAY_SIZE(strategy_names))
		return "unknown";
	return strategy_names[s];
}

void
mg_steps_free(struct mg_step *steps, uint32_t nsteps)
{
	uint32_t i;

	if (!steps)
		return;
	for (i = 0; i < nsteps; i++)
		free(steps[i].moves);
	free(steps);
}

/*
 * @nsteps steps (times 0, no moves yet), step i with room for @sizes[i]
 * moves, or for one each if @sizes is NULL.  Return: the array or NULL.
 */
static struct mg_step *
steps_alloc(uint32_t nsteps, const uint32_t *sizes)
{
	struct mg_step *s = calloc(nsteps, sizeof(*s));
	uint32_t i;

	if (!s)
		return NULL;
	for (i = 0; i < nsteps; i++) {
		s[i].moves = malloc(sizeof(*s[i].moves) *
				    (size_t)(sizes ? sizes[i] : 1));
		if (!s[i].moves) {
			mg_steps_free(s, i);
			return NULL;
		}
	}
	return s;
}

static void
step_push(struct mg_step *s, uint32_t bin, uint32_t worker)
{
	s->moves[s->nmoves].bin = bin;
	s->moves[s->nmoves].worker = worker;
	s->nmoves++;
}

static int
all_at_once(const uint16_t *from, const uint16_t *to, uint32_t nbins,
	    uint32_t nmoves, struct mg_step **out, uint32_t *nsteps)
{
	struct mg_step *s = steps_alloc(1, &nmoves);
	uint32_t b;

	if (!s)
		return -ENOMEM;
	for (b = 0; b < nbins; b++)
		if (from[b] != to[b])
			step_push(&s[0], b, to[b]);
	*out = s;
	*nsteps = 1;
	return 0;
}

static int
fluid(const uint16_t *from, const uint16_t *to, uint32_t nbins, uint32_t nmoves,
      struct mg_step **out, uint32_t *nsteps)
{
	struct mg_step *s = steps_alloc(nmoves, NULL);
	uint32_t b, k = 0;

	if (!s)
		return -ENOMEM;
	for (b = 0; b < nbins; b++)
		if (from[b] != to[b])
			step_push(&s[k++], b, to[b]);
	*out = s;
	*nsteps = nmoves;
	return 0;
}

/*
 * Working state of the batched colouring.  Edges are the moving bins in
 * bin order; "left" groups send, "right" groups receive (see the top of
 * the file).
 */
struct colouring {
	uint32_t nedges, delta, nl, nr;
	uint32_t *lg, *rg;     /* worker -> its sender / receiver group */
	uint32_t *ebin;	       /* edge -> bin */
	uint32_t *order;       /* edges grouped by sender group */
	uint32_t *lstart;      /* sender group -> first index in order[] */
	uint32_t *colour;      /* edge -> colour, NONE while uncoloured */
	uint32_t *at_l, *at_r; /* [group * delta + colour] -> edge or NONE */
	uint32_t *cursor;      /* right group -> lowest colour not scanned */
	uint32_t *freed;       /* right group -> top of its free stack */
	uint32_t *fcolour;     /* stack node -> colour */
	uint32_t *fnext;       /* stack node -> next node or NONE */
	uint32_t nfreed;       /* stack nodes used */
	uint32_t *path;	       /* edges of the current alternating path */
};

static void
colouring_fini(struct colouring *c)
{
	free(c->lg);
	free(c->rg);
	free(c->ebin);
	free(c->order);
	free(c->lstart);
	free(c->colour);
	free(c->at_l);
	free(c->at_r);
	free(c->cursor);
	free(c->freed);
	free(c->fcolour);
	free(c->fnext);
	free(c->path);
}

static uint32_t *
alloc_u32(size_t n, bool fill_none)
{
	uint32_t *a;

	if (n > SIZE_MAX / sizeof(*a))
		return NULL;
	a = malloc(sizeof(*a) * (n ? n : 1));
	if (a && fill_none)
		memset(a, 0xff, sizeof(*a) * n);
	return a;
}

/*
 * Replace the degrees @deg[0..n) by group numbers: next-fit packing of the
 * workers, in index order, into groups of total degree <= @cap.
 * Return: the number of groups.
 */
static uint32_t
pack_groups(uint32_t *deg, uint32_t n, uint32_t cap)
{
	uint32_t w, g = 0, fill = 0;

	for (w = 0; w < n; w++) {
		if (fill + deg[w] > cap) {
			g++;
			fill = 0;
		}
		fill += deg[w];
		deg[w] = g;
	}
	return g + 1;
}

static uint32_t
edge_l(const struct colouring *c, const uint16_t *from, uint32_t e)
{
	return c->lg[from[c->ebin[e]]];
}

static uint32_t
edge_r(const struct colouring *c, const uint16_t *to, uint32_t e)
{
	return c->rg[to[c->ebin[e]]];
}

/* A colour free at right group @v, taken off its free set. */
static uint32_t
take_free(struct colouring *c, uint32_t v)
{
	const uint32_t *at = &c->at_r[(size_t)v * c->delta];
	uint32_t node, col;

	while ((node = c->freed[v]) != NONE) {
		c->freed[v] = c->fnext[node];
		col = c->fcolour[node];
		if (at[col] == NONE)
			return col;
	}
	while (at[c->cursor[v]] != NONE) {
		c->cursor[v]++;
		MG_ASSERT(c->cursor[v] < c->delta);
	}
	return c->cursor[v]++;
}

/*
 * Swap colours @a and @b on the path that starts at right group @v with its
 * a-edge.  Afterwards @a is free at @v.
 */
static void
flip_path(struct colouring *c, const uint16_t *from, const uint16_t *to,
	  uint32_t v, uint32_t a, uint32_t b)
{
	size_t delta = c->delta;
	uint32_t len = 0, x = v, col = a, e, i, l, r;
	bool right = true;

	for (;;) {
		e = right ? c->at_r[x * delta + col] : c->at_l[x * delta + col];
		if (e == NONE)
			break;
		MG_ASSERT(len < c->nl + c->nr);
		c->path[len++] = e;
		x = right ? edge_l(c, from, e) : edge_r(c, to, e);
		right = !right;
		col = col == a ? b : a;
	}
	MG_ASSERT(len > 0);
	if (right) {
		/*
		 * The far end x is a receiver group (never v: v has no b-edge
		 * to come back by); it had b and no a, so b becomes free there.
		 */
		MG_ASSERT(c->nfreed < c->nedges);
		c->fcolour[c->nfreed] = b;
		c->fnext[c->nfreed] = c->freed[x];
		c->freed[x] = c->nfreed++;
	}
	for (i = 0; i < len; i++) {
		e = c->path[i];
		l = edge_l(c, from, e);
		r = edge_r(c, to, e);
		c->at_l[l * delta + c->colour[e]] = NONE;
		c->at_r[r * delta + c->colour[e]] = NONE;
	}
	for (i = 0; i < len; i++) {
		e = c->path[i];
		l = edge_l(c, from, e);
		r = edge_r(c, to, e);
		c->colour[e] = c->colour[e] == a ? b : a;
		c->at_l[l * delta + c->colour[e]] = e;
		c->at_r[r * delta + c->colour[e]] = e;
	}
}

static int
batched(const uint16_t *from, const uint16_t *to, uint32_t nbins,
	uint32_t nworkers, uint32_t nmoves, struct mg_step **out,
	uint32_t *nsteps)
{
	struct colouring c = {.nedges = nmoves};
	struct mg_step *s;
	uint32_t b, e, w, g, k, i, a, v, *count = NULL;
	size_t delta;
	int rc = -ENOMEM;

	c.lg = alloc_u32(nworkers, false);
	c.rg = alloc_u32(nworkers, false);
	c.ebin = alloc_u32(nmoves, false);
	c.order = alloc_u32(nmoves, false);
	c.colour = alloc_u32(nmoves, true);
	c.fcolour = alloc_u32(nmoves, false);
	c.fnext = alloc_u32(nmoves, false);
	if (!c.lg || !c.rg || !c.ebin || !c.order || !c.colour || !c.fcolour ||
	    !c.fnext)
		goto out;

	/* Degrees, Δ and the groups. */
	memset(c.lg, 0, sizeof(uint32_t) * nworkers);
	memset(c.rg, 0, sizeof(uint32_t) * nworkers);
	for (b = 0, e = 0; b < nbins; b++) {
		if (from[b] != to[b]) {
			c.ebin[e++] = b;
			c.lg[from[b]]++;
			c.rg[to[b]]++;
		}
	}
	for (w = 0; w < nworkers; w++) {
		c.delta = c.lg[w] > c.delta ? c.lg[w] : c.delta;
		c.delta = c.rg[w] > c.delta ? c.rg[w] : c.delta;
	}
	delta = c.delta;
	c.nl = pack_groups(c.lg, nworkers, c.delta);
	c.nr = pack_groups(c.rg, nworkers, c.delta);

	c.lstart = alloc_u32((size_t)c.nl + 1, false);
	c.at_l = alloc_u32((size_t)c.nl * delta, true);
	c.at_r = alloc_u32((size_t)c.nr * delta, true);
	c.cursor = alloc_u32(c.nr, false);
	c.freed = alloc_u32(c.nr, true);
	c.path = alloc_u32((size_t)c.nl + c.nr, false);
	count = alloc_u32(delta, false);
	if (!c.lstart || !c.at_l || !c.at_r || !c.cursor || !c.freed ||
	    !c.path || !count)
		goto out;
	memset(c.cursor, 0, sizeof(uint32_t) * c.nr);

	/* Counting sort of the edges by sender group, bin order kept. */
	memset(c.lstart, 0, sizeof(uint32_t) * ((size_t)c.nl + 1));
	for (e = 0; e < nmoves; e++)
		c.lstart[edge_l(&c, from, e) + 1]++;
	for (g = 0; g < c.nl; g++)
		c.lstart[g + 1] += c.lstart[g];
	for (e = 0; e < nmoves; e++)
		c.order[c.lstart[edge_l(&c, from, e)]++] = e;
	for (g = c.nl; g > 0; g--)
		c.lstart[g] = c.lstart[g - 1];
	c.lstart[0] = 0;

	/* Colour: the k-th edge of a sender group gets colour k. */
	for (g = 0; g < c.nl; g++) {
		for (i = c.lstart[g], k = 0; i < c.lstart[g + 1]; i++, k++) {
			e = c.order[i];
			a = k;
			v = edge_r(&c, to, e);
			MG_ASSERT(a < c.delta && c.at_l[g * delta + a] == NONE);
			if (c.at_r[v * delta + a] != NONE)
				flip_path(&c, from, to, v, a, take_free(&c, v));
			c.colour[e] = a;
			c.at_l[g * delta + a] = e;
			c.at_r[v * delta + a] = e;
		}
	}

	/* One step per colour, moves in bin order. */
	memset(count, 0, sizeof(uint32_t) * delta);
	for (e = 0; e < nmoves; e++)
		count[c.colour[e]]++;
	for (a = 0; a < c.delta; a++)
		MG_ASSERT(count[a] > 0);
	s = steps_alloc(c.delta, count);
	if (!s)
		goto out;
	for (e = 0; e < nmoves; e++)
		step_push(&s[c.colour[e]], c.ebin[e], to[c.ebin[e]]);
	*out = s;
	*nsteps = c.delta;
	rc = 0;
out:
	free(count);
	colouring_fini(&c);
	return rc;
}

int
mg_strategy_steps(enum mg_strategy s, const uint16_t *from, const uint16_t *to,
		  uint32_t nbins, uint32_t nworkers, struct mg_step **out,
		  uint32_t *nsteps)
{
	uint32_t b, nmoves = 0;

	if ((unsigned)s >= MG_ARRAY_SIZE(strategy_names) || nbins == 0 ||
	    nworkers == 0 || nworkers > MAX_WORKERS)
		return -EINVAL;
	for (b = 0; b < nbins; b++) {
		if (from[b] >= nworkers || to[b] >= nworkers)
			return -EINVAL;
		nmoves += from[b] != to[b];
	}
	if (nmoves == 0) {
		*out = NULL;
		*nsteps = 0;
		return 0;
	}
	switch (s) {
	case MG_ALL_AT_ONCE:
		return all_at_once(from, to, nbins, nmoves, out, nsteps);
	case MG_FLUID:
		return fluid(from, to, nbins, nmoves, out, nsteps);
	case MG_BATCHED:
		return batched(from, to, nbins, nworkers, nmoves, out, nsteps);
	}
	MG_BUG("strategy %d", (int)s);
}

void
mg_plan_half_of_half(const uint16_t *from, uint32_t nbins, uint32_t nworkers,
		     uint16_t *to)
{
	/* One parity bit per sender: senders are below nworkers / 2 <= 32767. */
	uint64_t odd[(MAX_WORKERS / 2 + 64) / 64] = {0};
	uint32_t b, w, half = nworkers / 2, nrecv = nworkers - half, k = 0;

	MG_ASSERT(nworkers >= 1 && nworkers <= MAX_WORKERS);
	for (b = 0; b < nbins; b++) {
		w = from[b];
		MG_ASSERT(w < nworkers);
		to[b] = (uint16_t)w;
		if (w >= half)
			continue;
		/* Every second bin of a sender moves: its 2nd, 4th, ... */
		odd[w / 64] ^= 1ull << (w % 64);
		if (!(odd[w / 64] & (1ull << (w % 64))))
			to[b] = (uint16_t)(half + k++ % nrecv);
	}
}

/*
 * sessions - sessionize a live stream of events arriving over TCP.
 *
 *   sessions [--port P] [--workers N] [--gap T] [--lateness L] [--idle-ms MS]
 *
 * Listens on 127.0.0.1:P (0: any free port; "listening on 127.0.0.1:PORT"
 * goes to stderr) for lines "user,action,ts": ts is the event's logical
 * time, an integer.  Every connection is one producer of an application
 * input.  A user's session is a maximal run of their events less than T
 * apart; it closes T after its last event, when the timer that event
 * scheduled fires -- the open sessions and their timers live in the users'
 * bins and move with them.  Closed sessions go to stdout, in time order:
 *
 *   session USER FIRST LAST EVENTS
 *
 * Time moves on as every producer promises it (the input's frontier is
 * their minimum):
 *
 *   - a connection promises each ts it sends: its events come in ts order
 *     (an event behind what it already sent gets "late" back, an invalid
 *     line "error: ..."; both are counted and reported at exit);
 *   - the server itself keeps one producer that promises L behind the
 *     latest ts any connection sent (the watermark), so a client that
 *     connects later may still send events up to L old: it starts at the
 *     input's frontier;
 *   - a connection quiet for MS ms promises the same (--idle-ms 0: never),
 *     so an idle client does not hold every session open; after that it may
 *     not send times before it.
 *
 * Live rebalancing: the line "!rebalance" on any connection, or SIGUSR1,
 * asks the rebalancer thread to move every bin to the next worker, while
 * the events flow (a request that comes while a move is under way waits
 * for it).  SIGINT or SIGTERM: stop taking connections, read what the open
 * ones sent, close every session, exit.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <megaphone.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define USER_MAX   24
#define ACTION_MAX 16
#define LINE_MAX_  256

struct event {
	char user[USER_MAX];
	char action[ACTION_MAX];
};

struct session {
	char user[USER_MAX];
	uint64_t first, last, events;
};

struct app {
	struct mg_dataflow *df;
	struct mg_input *in;
	uint64_t gap, lateness;
	unsigned workers;
	int idle_ms;
	_Atomic uint64_t watermark; /* the latest time a connection reached */
	_Atomic uint64_t refused;   /* late or invalid lines */
	_Atomic unsigned open;	    /* connections */
	_Atomic bool shutting_down;
	/* rebalance requests, for the rebalancer thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned requests;
	bool done;
};

static uint64_t
user_key(const char *user)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *user; user++)
		h = (h ^ (unsigned char)*user) * 1099511628211ull;
	return h;
}

static uint64_t
hash(void *ctx, const void *rec)
{
	(void)ctx;
	return mg_hash64(user_key(((const struct event *)rec)->user));
}

/*
 * Once per (bin, time): first the timers due now -- a session whose last
 * event is exactly `gap` ago closes -- then this time's events.  A timer
 * whose session was extended since finds a later `last` and does nothing.
 */
static void
sessionize(void *ctx, struct mg_bin_call *c, struct mg_emitter *out)
{
	const struct app *a = ctx;
	struct mg_map *open = c->state; /* user key -> struct session */
	const uint64_t *due = c->timers;
	const struct event *ev = c->in[0];
	void *v;

	if (!open->value_size)
		mg_map_init(open, sizeof(struct session));
	for (uint32_t i = 0; i < c->n_timers; i++) {
		struct session *s = mg_map_find(open, due[i]);

		if (s && s->last + a->gap == c->time) {
			mg_emit(out, s);
			mg_map_erase(open, c->arena, due[i]);
		}
	}
	for (uint32_t i = 0; i < c->n_in[0]; i++) {
		uint64_t key = user_key(ev[i].user);
		struct session *s;
		int r = mg_map_upsert(open, c->arena, key, &v);

		if (r < 0) {
			c->error = -ENOMEM;
			return;
		}
		s = v;
		if (r == 1) { /* a new session */
			memcpy(s->user, ev[i].user, USER_MAX);
			s->first = c->time;
		} else if (s->last == c->time) {
			s->events++; /* its timer is set already */
			continue;
		}
		s->last = c->time;
		s->events++;
		if (mg_schedule(c, c->time + a->gap, &key)) {
			c->error = -ENOMEM;
			return;
		}
	}
}

/* Ask the rebalancer thread for a move (any thread; never blocks long). */
static void
rebalance(struct app *a)
{
	pthread_mutex_lock(&a->lock);
	a->requests++;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/*
 * The rebalancer: for each request, every bin to the next worker, at the
 * earliest time the engine can take.  A controller of its own, so waiting
 * for a move under way blocks no connection (whose promises that move may
 * be waiting for).
 */
static void *
rebalancer_main(void *arg)
{
	struct app *a = arg;
	uint32_t nb = mg_dataflow_bins(a->df);
	uint16_t *to = malloc(sizeof(*to) * nb);
	struct mg_migration *last = NULL;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		int err;

		while (!a->requests && !a->done)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->done)
			break;
		a->requests--;
		pthread_mutex_unlock(&a->lock);
		if (last) /* one move at a time */
			mg_migration_wait(last);
		err = -ENOMEM;
		if (to) {
			mg_dataflow_owners(a->df, to);
			for (uint32_t b = 0; b < nb; b++)
				to[b] = (uint16_t)((to[b] + 1) % a->workers);
			err = mg_migrate(a->df, MG_ALL_AT_ONCE, to,
					 MG_TIME_ASAP, 0, &last);
		}
		fprintf(stderr, "sessions: rebalancing every bin: %s\n",
			mg_strerror(err));
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	free(to);
	return NULL;
}

/* ---- one connection: one producer ----------------------------------------------- */

struct conn {
	struct app *a;
	int fd;
	struct mg_producer *p;
	pthread_t thread;
	struct conn *next;
};

static void
reply(int fd, const char *msg)
{
	(void)!write(fd, msg, strlen(msg));
}

/* "user,action,ts" into @ev and @ts; a message for the client if bad. */
static const char *
parse(char *line, struct event *ev, uint64_t *ts)
{
	char *user = line, *action, *t, *end;

	action = strchr(user, ',');
	if (!action)
		return "error: expected user,action,ts\n";
	*action++ = 0;
	t = strchr(action, ',');
	if (!t)
		return "error: expected user,action,ts\n";
	*t++ = 0;
	if (!*user || strlen(user) >= USER_MAX || strlen(action) >= ACTION_MAX)
		return "error: user (1..23) or action (0..15 bytes) too long\n";
	errno = 0;
	*ts = isdigit((unsigned char)*t) ? strtoull(t, &end, 10) : 0;
	if (!isdigit((unsigned char)*t) || *end || errno ||
	    *ts >= MG_TIME_LIMIT / 2)
		return "error: ts is not a time\n";
	memset(ev, 0, sizeof(*ev));
	strcpy(ev->user, user);
	strcpy(ev->action, action);
	return NULL;
}

static void
raise_watermark(struct app *a, uint64_t t)
{
	uint64_t w = atomic_load_explicit(&a->watermark, memory_order_relaxed);

	while (t > w && !atomic_compare_exchange_weak_explicit(
				&a->watermark, &w, t, memory_order_relaxed,
				memory_order_relaxed))
		;
}

static void
handle_line(struct conn *k, char *line)
{
	struct event ev;
	uint64_t ts;
	const char *bad;

	if (!strcmp(line, "!rebalance")) {
		rebalance(k->a);
		return;
	}
	bad = parse(line, &ev, &ts);
	if (!bad && ts < mg_producer_time(k->p))
		bad = "late: behind what this connection may still send\n";
	if (bad) {
		atomic_fetch_add(&k->a->refused, 1);
		reply(k->fd, bad);
		return;
	}
	/* Promise the new time (this also sends what waited at the old
	 * one), then push; events at one time batch together. */
	if (ts > mg_producer_time(k->p))
		mg_producer_advance(k->p, ts);
	if (mg_push_wait(k->p, ts, &ev, sizeof(ev), 1, MG_FOREVER) != 1)
		reply(k->fd, "error: the pipeline has stopped\n");
	raise_watermark(k->a, ts);
}

static void *
conn_main(void *arg)
{
	struct conn *k = arg;
	struct app *a = k->a;
	char buf[LINE_MAX_ * 4];
	size_t len = 0;
	int quiet_ms = 0;

	for (;;) {
		struct pollfd pf = {k->fd, POLLIN, 0};
		bool stopping = atomic_load(&a->shutting_down);
		int r = poll(&pf, 1, stopping ? 0 : 100);
		ssize_t got;

		if (r == 0) { /* quiet */
			if (stopping)
				break; /* read everything it sent */
			quiet_ms += 100;
			if (a->idle_ms && quiet_ms >= a->idle_ms) {
				uint64_t w = atomic_load(&a->watermark);

				w = w > a->lateness ? w - a->lateness : 0;
				if (w > mg_producer_time(k->p))
					mg_producer_advance(k->p, w);
				quiet_ms = 0;
			}
			continue;
		}
		got = read(k->fd, buf + len, sizeof(buf) - len);
		if (got <= 0)
			break; /* the client is done */
		quiet_ms = 0;
		len += (size_t)got;
		for (;;) {
			char *nl = memchr(buf, '\n', len);
			size_t used;

			if (!nl && len < sizeof(buf))
				break;
			if (!nl) /* an overlong line: take it as it is */
				nl = buf + len - 1;
			*nl = 0;
			if (nl > buf && nl[-1] == '\r')
				nl[-1] = 0;
			if (*buf)
				handle_line(k, buf);
			used = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, len - used);
			len -= used;
		}
	}
	mg_producer_close(k->p); /* this connection no longer holds time */
	close(k->fd);
	fprintf(stderr, "sessions: connection closed (%u open)\n",
		atomic_fetch_sub(&a->open, 1) - 1);
	return NULL;
}

/* ---- closed sessions to stdout ---------------------------------------------------- */

static int
by_user(const void *x, const void *y)
{
	return strcmp(((const struct session *)x)->user,
		      ((const struct session *)y)->user);
}

static void *
printer_main(void *arg)
{
	struct mg_output *o = arg;
	struct mg_output_time t;
	int err;

	while ((err = mg_output_next(o, &t, MG_FOREVER)) == 0) {
		struct session *s = malloc(sizeof(*s) * t.count);

		if (!s)
			break;
		memcpy(s, t.records, sizeof(*s) * t.count);
		qsort(s, t.count, sizeof(*s), by_user);
		for (uint32_t i = 0; i < t.count; i++)
			printf("session %s %llu %llu %llu\n", s[i].user,
			       (unsigned long long)s[i].first,
			       (unsigned long long)s[i].last,
			       (unsigned long long)s[i].events);
		fflush(stdout);
		free(s);
	}
	if (err != -ENODATA)
		fprintf(stderr, "sessions: output: %s\n", mg_strerror(err));
	return NULL;
}

/* ---- main: listen, accept, signals ---------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f, "usage: sessions [options]\n"
		   "  --port P        TCP port on 127.0.0.1 (0: any; default "
		   "0)\n"
		   "  --workers N     worker threads (default 2)\n"
		   "  --gap T         session gap, in ts units (default 10)\n"
		   "  --lateness L    accept events up to L behind the latest "
		   "(default 60)\n"
		   "  --idle-ms MS    a quiet connection promises the latest "
		   "time after MS ms\n"
		   "                  (0: never; default 1000)\n"
		   "  --help\n"
		   "Lines: user,action,ts | !rebalance.  SIGUSR1: rebalance; "
		   "SIGINT/SIGTERM: finish and exit.\n");
}

/* @s as a decimal number in @min..@max, or exit(2) saying why. */
static unsigned long
number(const char *s, const char *flag, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = isdigit((unsigned char)*s) ? strtoul(s, &end, 10) : 0;
	if (!isdigit((unsigned char)*s) || *end || errno || v < min ||
	    v > max) {
		fprintf(stderr,
			"sessions: %s wants a number from %lu to %lu, not "
			"'%s' (--help)\n",
			flag, min, max, s);
		exit(2);
	}
	return v;
}

static int
listen_on(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int one = 1,
	    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		perror("sessions: listen");
		exit(1);
	}
	fprintf(stderr, "sessions: listening on 127.0.0.1:%u\n",
		ntohs(sa.sin_port));
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"workers", required_argument, NULL, 'w'},
		{"gap", required_argument, NULL, 'g'},
		{"idle-ms", required_argument, NULL, 'i'},
		{"lateness", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct app a = {.gap = 10,
			       .lateness = 60,
			       .workers = 2,
			       .idle_ms = 1000,
			       .lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER};
	struct mg_dataflow_config cfg = {.oversubscribe = true};
	struct mg_stateful_config op = {
		.ninputs = 1,
		.hash = {hash},
		.out_record_size = sizeof(struct session),
		.state_size = sizeof(struct mg_map),
		.timer_record_size = sizeof(uint64_t),
		.fn = sessionize,
		.ctx = &a,
	};
	unsigned port = 0;
	struct conn *conns = NULL, *k;
	struct mg_producer *anchor; /* holds the frontier L behind */
	struct mg_output *out;
	pthread_t printer, rebalancer;
	sigset_t sigs;
	int c, err, lfd, sfd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = (unsigned)number(optarg, "--port", 0, 65535);
			break;
		case 'w':
			a.workers =
				(unsigned)number(optarg, "--workers", 1, 256);
			break;
		case 'g':
			a.gap = number(optarg, "--gap", 1, 1ul << 40);
			break;
		case 'i':
			a.idle_ms =
				(int)number(optarg, "--idle-ms", 0, 3600000);
			break;
		case 'l':
			a.lateness = number(optarg, "--lateness", 0, 1ul << 40);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sessions: unexpected argument '%s' (--help)\n",
			argv[optind]);
		return 2;
	}
	/* Signals arrive through a signalfd, in the main loop; every thread
	 * started from here on has them blocked. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	lfd = listen_on(port);

	cfg.workers = a.workers;
	if ((err = mg_dataflow_create(&a.df, &cfg)))
		goto fail;
	op.in[0] = mg_input(a.df, sizeof(struct event), &a.in);
	out = mg_output(a.df, mg_stateful(a.df, &op));
	if ((err = mg_producer_open(a.in, 0, &anchor)) ||
	    (err = mg_dataflow_start(a.df, NULL, NULL)))
		goto fail;
	pthread_create(&printer, NULL, printer_main, out);
	pthread_create(&rebalancer, NULL, rebalancer_main, &a);

	for (bool run = true; run;) {
		struct pollfd pf[2] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}};
		struct signalfd_siginfo si;
		uint64_t w = atomic_load(&a.watermark);

		/* the server's own promise: L behind the latest time */
		w = w > a.lateness ? w - a.lateness : 0;
		if (w > mg_producer_time(anchor))
			mg_producer_advance(anchor, w);
		if (poll(pf, 2, 100) < 0 && errno != EINTR)
			break;
		if (pf[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1)
				rebalance(&a);
			else
				run = false;
		}
		/* accept what is waiting, also when about to stop: a client
		 * that connected before the signal is served */
		for (;;) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd < 0)
				break; /* EAGAIN: nobody waits */
			k = calloc(1, sizeof(*k));
			if (!k ||
			    mg_producer_open(a.in, MG_ANY_WORKER, &k->p)) {
				reply(fd, "error: cannot take more events\n");
				close(fd);
				free(k);
				continue;
			}
			k->a = &a;
			k->fd = fd;
			k->next = conns;
			conns = k;
			fprintf(stderr,
				"sessions: connection accepted (%u open)\n",
				atomic_fetch_add(&a.open, 1) + 1);
			pthread_create(&k->thread, NULL, conn_main, k);
		}
	}
	/* Finish: no new connections, the open ones send what they have. */
	close(lfd);
	atomic_store(&a.shutting_down, true);
	mg_producer_close(anchor);
	mg_input_close(a.in);
	while ((k = conns)) {
		pthread_join(k->thread, NULL);
		conns = k->next;
		free(k);
	}
	pthread_join(printer, NULL); /* every session printed */
	pthread_mutex_lock(&a.lock);
	a.done = true;
	pthread_cond_signal(&a.cond);
	pthread_mutex_unlock(&a.lock);
	pthread_join(rebalancer, NULL);
	err = mg_dataflow_join(a.df, NULL);
	fprintf(stderr, "sessions: %llu late or invalid lines refused\n",
		(unsigned long long)atomic_load(&a.refused));
fail:
	if (err)
		fprintf(stderr, "sessions: %s\n", mg_strerror(err));
	mg_dataflow_destroy(a.df);
	close(sfd);
	return err ? 1 : 0;
}

/*
 * handoff.pml - a Promela model of the per-bin handoff protocol, checked
 * exhaustively by spin (`make check-model`).
 *
 * WHAT IS MODELLED
 *
 * One stateful operator on W workers (2 or 3) with NB bins, logical times
 * 0..NT-1 (NT stands for MG_TIME_MAX), a few records -- each with a bin,
 * a time, the source that stamps it and maybe a timer it schedules in its
 * bin for a later time -- and a plan of migration steps.  Processes, and
 * the code each step of theirs stands for:
 *
 *   control  mg_router_submit() and publish(): PUBLISH makes steps' moves
 *            visible in the table (one rcu_assign_pointer()); only steps at
 *            or after the control frontier (check_steps()).
 *            mg_router_advance(): ctl++, only once every move before the
 *            new frontier is published (the release store ORDER(R-ctl)).
 *            With FOLD, fold(): moves of complete steps go into base[].
 *   source   source_step(): reads the control frontier (mg_router_frontier,
 *            acquire) and stamps a record only below it; send_record():
 *            routes it by (bin, time) with mg_routing_owner() on the table
 *            read after stamping (route()); send_flush(): the mark
 *            min(next record, control frontier) on every channel.
 *   worker   one round of mg__stateful_step(), in three atomic steps after
 *            its receives:
 *            RECV   mg_mesh_recv_burst_spsc() and log_batch(): a record
 *                   joins the log, a mark raises the port's frontier;
 *            1      the port frontier f, then learn_moves(): one read of
 *                   the table, new moves filed into `in` (awaiting set) or
 *                   `out` -- after the receives (the essay's step 0);
 *            2      copy_receive(), then acquire_moves(): the token load
 *                   ORDER(A7); on a match: held, awaiting cleared unless
 *                   another move of the bin is in, mg_step_done();
 *            3      the loop of mg__stateful_step(): upto = min(earliest(
 *                   out), f); process(): collect() defers the records of a
 *                   bin awaiting and not held, call_bin() applies records
 *                   and the due timers of held bins (the timer heap) in
 *                   time order; release_moves(): once processed_upto >= t
 *                   and held, the one release store of the token ORDER(R7),
 *                   or in copy mode copy_release() + copy_send() (the bin's
 *                   state and timers as one message on the state mesh);
 *                   done_upto = min(processed_upto, earliest(in)).
 *   init     a configuration, the run, and the final checks.
 *
 * CHECKED (assertions; pan also reports invalid end states)
 *   - exactly once: no record applied twice (applied, and the bin's own
 *     state bst), no timer fired twice; at the end all applied, all fired,
 *     each bin's state holds all its records, each bin with its final owner;
 *   - by the bin's owner at the record's time: the ghost g_owner (set on
 *     acquire, NONE from release to acquire) is the applying worker, and so
 *     is the plan's owner of the bin at that time (config());
 *   - in time order per bin (lastt), records and timers alike;
 *   - frontiers: a worker never applies at a time its done_upto has passed,
 *     and the operator's output frontier (min of done_upto) never passes a
 *     time with a record or timer still unapplied (frontier_check());
 *   - the code's MG_ASSERTs: a record never arrives behind processed_upto
 *     (log_batch()), upto >= processed_upto (mg__stateful_step()), an
 *     output frontier never goes back (the marks it becomes: ring I2);
 *   - no deadlock: a worker steps only when the step would change something
 *     (STEP_GUARD), so a stuck protocol blocks and every process must end
 *     (pan's invalid end states).  Every step grows some counter (times,
 *     moves filed or done, records sent or applied), so no run is infinite:
 *     no livelock either.
 *
 * CONFIGURATIONS (-DCFG_...)
 *   BASIC  2 workers, 2 bins, 2 sources.  Bin 0 moves A->B at 1; a timer
 *          scheduled on A fires on B; bin 1 stays on B, which goes on with
 *          it while it waits for bin 0.
 *   CHAIN  3 workers, 1 bin, one plan: A->B at 1, B->C at 2, C->A at 3.
 *          A timer set on A fires on C, one set on B crosses two hops and
 *          fires on A; a record at 3 waits on A for C's release.
 *          -DCOPY: the same in copy mode, where any move may also go as
 *          a handoff (a copy out of memory: engine/copymode.c).
 *   FOLD   3 workers, 2 bins: step 0 at 1 moves bin 0 A->B and bin 1 B->A,
 *          step 1 at 2 moves bin 0 B->C; the control side folds complete
 *          steps while records still flow.
 *   -DFIFO real Promela FIFO channels (per source and worker, records and
 *          marks in-band) instead of the port abstraction below; run on
 *          BASIC to cross-check it.
 *
 * SEEDED BUGS (-DBUG_...; `make check-model` requires pan to report each)
 *   EARLY_RELEASE     release once processed_upto >= t - 1
 *   LATE_RELEASE      release only once processed_upto > t (a deadlock)
 *   NO_DEFER          apply records of a bin awaited and not yet held
 *   NO_HOLD           done_upto = processed_upto, ignoring arrivals
 *   FRONTIER_FIRST    advance the control frontier before publishing
 *   LEARN_FIRST       read the table before draining the ports
 *   COPY_DROP_TIMERS  copy mode without the timers in the bytes
 *   FOLD_ANY_ORDER    fold() as migration/router.c has it: a complete step
 *                     folds even while an earlier move of its bin does not
 *                     (found with this model: the chain's bin then routes
 *                     to a worker that no longer holds it).  FOLD without
 *                     the bug folds a move only after the bin's earlier ones.
 *
 * ABSTRACTED AWAY, AND WHY THAT IS SOUND
 *   - Memory order.  Spin is sequentially consistent.  Every cross-thread
 *     edge the protocol uses is a labelled release/acquire pair (token
 *     R7/A7, control frontier R-ctl, table rcu_assign_pointer() /
 *     rcu_dereference(), ck_ring's fences, step counter R6/A6), so the
 *     accesses modelled are race-free and behave as under SC.  The model
 *     checks the protocol those edges carry, not the labels.
 *   - Data.  A record is (bin, time, timer); a bin's state is the records
 *     applied to it (bst) and its pending timers (tpend), both in the bin
 *     (its pages: they go with the token, or in the copy message); output is
 *     only its time.  Batches, the radix sort, log buckets and far runs,
 *     stale timer-heap entries, arenas, re-homing: representations under
 *     process(), which applies "every due item in time order, but deferred
 *     bins" directly.  One operator (nops = 1), one input.
 *   - Channels.  Without -DFIFO a channel is what its consumer sees: a
 *     record joins the consumer's log when sent, and the port takes up the
 *     source's last mark one time at a time (cf < sf[s]: cf++).  Delivering
 *     records at once loses nothing: a record sent after mark m has time >=
 *     m, so it is not due before a later mark, which FIFO would bring after
 *     it anyway.  Every port value up to the last mark is a promise the
 *     source made, and stepping one time at a time covers every prefix of
 *     marks received, the timer cap and STEP_BUDGET (a step that stops
 *     early is a step with a lower frontier).  Bounded rings only delay
 *     delivery, which the ports do already.  -DFIFO checks the abstraction.
 *   - Atomic steps (Lipton's reduction).  Each atomic step holds at most one
 *     access that does not commute with other processes: step 1 one table
 *     read; step 2 receives (right movers) and one token load -- each
 *     worker is the new owner in at most one move (asserted in init); step
 *     3 touches only held bins and its own log, its release stores conflict
 *     only with the new owners' loads, each a step 2 of its own that moves
 *     out of the way (one that misses moves before the store, one that
 *     hits after it), and done_upto is read by the checks alone.  A
 *     source reads the frontier and the table in one step: the table gains
 *     every move before the frontier passes it and a (correct) fold keeps
 *     every route below the frontier, so a later read routes the same;
 *     with BUG_FRONTIER_FIRST or BUG_FOLD_ANY_ORDER it does not, and the
 *     bug still shows.
 *   - Size.  NT <= 4, 3-4 records, a plan published as one version (a chain
 *     across submissions is refused with -EBUSY by check_steps()).
 */

/* ---- configurations ------------------------------------------------------ */

#define NONE	255
#define MK	16	/* channel message x >= MK: a progress mark at x - MK */
#define TM	16	/* a due item x >= TM: the timer of record x - TM */
#define MAXM	4	/* moves (the guard macros below expand over 4) */
#define bit(i)	(1 << (i))
#define has(m, i) (((m) >> (i)) & 1)
#define MIN(a, b) ((a) < (b) -> (a) : (b))

#if !defined(CFG_BASIC) && !defined(CFG_CHAIN) && !defined(CFG_FOLD)
#define CFG_CHAIN
#endif

#ifdef CFG_BASIC
/* Two workers, two bins; bin 0 moves 0 -> 1 at time 1, bin 1 stays on 1. */
#define W	2
#define NB	2
#define NT	3	/* times 0..NT-1; INF = NT */
#define NSRC	2
#define NR	4
#define NM	1
#define NS	1
#endif
#ifdef CFG_CHAIN
/* Three workers, one bin: 0 -> 1 at 1, 1 -> 2 at 2, 2 -> 0 at 3. */
#define W	3
#define NB	1
#define NT	4
#define NSRC	1
#define NR	3
#define NM	3
#define NS	3
#define PUB_ALL
#endif
#ifdef CFG_FOLD
/* Three workers, two bins; step 0 at 1: bin 0 0 -> 1 and bin 1 1 -> 0;
 * step 1 at 2: bin 0 1 -> 2 (a chain across steps); the control side
 * folds completed steps into the base map while records still flow. */
#define W	3
#define NB	2
#define NT	3
#define NSRC	1
#define NR	3
#define NM	3
#define NS	2
#define PUB_ALL
#define FOLD
#endif

#define INF	NT
#if defined(COPY) && W != 3
#error "COPY needs three workers"
#endif
#define CAP	(NR + NT + 1)	/* a FIFO never fills: sources never block */

/* ---- constant data (set once by init; not part of the state) ------------- */

hidden byte rec_bin[NR], rec_time[NR], rec_tm[NR]; /* rec_tm: timer or NONE */
hidden byte src_lo[NSRC], src_hi[NSRC];		  /* a source's records */
hidden byte mv_time[MAXM], mv_bin[MAXM], mv_from[MAXM], mv_to[MAXM];
hidden byte mv_step[MAXM], step_end[NS], step_time[NS];
hidden byte owner0[NB];

/* ---- shared state -------------------------------------------------------- */

/* control side: the routing table (steps published, base map, folded
 * moves) and the control frontier */
byte pub, ctl, base[NB], folded;
#ifdef FIFO
/* per (source, worker): a data channel, FIFO, records and marks in-band */
chan ch[NSRC * W] = [CAP] of { byte };
#else
/* the channels as their consumers see them (see the essay): a record
 * lands in its worker's log when sent; sf[s] is the last mark source s
 * sent, which each port takes up one time at a time */
byte sf[NSRC];
#endif
/* per worker: the log (records received, not yet applied), written by
 * the worker -- and, without FIFO, by the delivery of a record */
byte logm[W];
/* per worker (written by its worker): processed_upto, done_upto (the
 * output frontier) */
byte pu[W], du[W];
/* per bin: the token and the bin's own state (its pages) */
byte token[NB];
byte bst[NB];		/* user state: the records applied to the bin */
byte tpend[NB];		/* the bin's pending timers (by scheduling record) */
#ifdef COPY
/* copy mode's state mesh: per (from, to) a channel of serialized bins */
chan sch[W * W] = [NB] of { byte, byte, byte, byte };
#endif
/* ghosts: who holds each bin (NONE in transit), last time applied per
 * bin, records applied, timers fired, moves acquired (mg_step_done) */
byte g_owner[NB], lastt[NB];
byte applied, fired, mvdone;

/* A worker's own state is local to its process (struct stateful_inst):
 * fw (the port's input frontier), pu[w] (processed_upto), held and awt
 * (bitmaps of bins), inm and outm (bitmaps of moves: the `in` and `out`
 * lists), learned (last_move_id), logm (bitmap of received records not
 * yet applied: the logs).  The macros below read them. */
#define PUBM		(pub == 0 -> 0 : step_end[pub - 1])
#define HELD(b)		has(held, b)
#ifdef BUG_NO_DEFER
#define DEFERRED(b)	0
#else
#define DEFERRED(b)	(inm != 0 && has(awt, b) && !HELD(b))
#endif
#define EO(j)		(has(outm, j) -> mv_time[j] : INF)
#define EI(j)		(has(inm, j) -> mv_time[j] : INF)
#define EARLIEST_OUT	MIN(MIN(EO(0), EO(1)), MIN(EO(2), EO(3)))
#define EARLIEST_IN	MIN(MIN(EI(0), EI(1)), MIN(EI(2), EI(3)))
#define TOK(j)		(has(inm, j) && token[mv_bin[j]] == j + 1)
#define TOKEN_READY	(TOK(0) || TOK(1) || TOK(2) || TOK(3))
#if defined(BUG_EARLY_RELEASE)
#define REL(j)		(has(outm, j) && mv_time[j] <= pu[w] + 1 && \
			 HELD(mv_bin[j]))
#elif defined(BUG_LATE_RELEASE)
#define REL(j)		(has(outm, j) && mv_time[j] < pu[w] && \
			 HELD(mv_bin[j]))
#else
#define REL(j)		(has(outm, j) && mv_time[j] <= pu[w] && \
			 HELD(mv_bin[j]))
#endif
#define RELEASABLE	(REL(0) || REL(1) || REL(2) || REL(3))
#ifdef COPY
#define COPY_PENDING	(len(sin0) + len(sin1) + len(sin2) > 0)
#else
#define COPY_PENDING	0
#endif
#ifdef BUG_NO_HOLD
#define DONE_UPTO	pu[w]
#else
#define DONE_UPTO	MIN(pu[w], EARLIEST_IN)
#endif
/* A step that would change nothing is not taken, so a stuck protocol
 * shows as an invalid end state rather than as a busy loop. */
#define STEP_GUARD	(PUBM > learned || COPY_PENDING || TOKEN_READY || \
			 MIN(EARLIEST_OUT, fw) > pu[w] || RELEASABLE || \
			 DONE_UPTO != du[w])
#define FINISHED	(fw == INF && pu[w] == INF && du[w] == INF && \
			 inm == 0 && outm == 0 && logm[w] == 0 && \
			 !COPY_PENDING)

/* ---- helpers ------------------------------------------------------------- */

/* The owner of bin b at time t in the published table (base map, then
 * the published moves not folded, in id order): mg_routing_owner(). */
inline route(b, t, d, j)
{
	d = base[b];
	j = 0;
	do
	:: j < PUBM ->
		if
		:: !has(folded, j) && mv_bin[j] == b && mv_time[j] <= t ->
			d = mv_to[j]
		:: else
		fi;
		j++
	:: else -> break
	od;
	j = 0
}

/* The owner of bin b at time t by the whole plan: what must happen. */
inline config(b, t, d, j)
{
	d = owner0[b];
	j = 0;
	do
	:: j < NM ->
		if
		:: mv_bin[j] == b && mv_time[j] <= t -> d = mv_to[j]
		:: else
		fi;
		j++
	:: else -> break
	od;
	j = 0
}

/* Everything worker w does to a bin at time t: the bin is w's, w is the
 * bin's owner at t by the plan, a bin's times never go back, and w has not
 * promised downstream (du) that nothing at t will come from it. */
inline touch(b, t, c, j)
{
	assert(g_owner[b] == w);
	config(b, t, c, j);
	assert(c == w);
	assert(t >= lastt[b]);
	assert(t >= du[w]);
	lastt[b] = t;
	c = 0
}

/* The operator's output frontier (min of every worker's du) never passes
 * a time at which a record or a timer is still to be applied. */
inline frontier_check(j, c)
{
	c = du[0];
	j = 1;
	do
	:: j < W -> c = MIN(c, du[j]); j++
	:: else -> break
	od;
	j = 0;
	do
	:: j < NR ->
		assert(has(applied, j) || rec_time[j] >= c);
		assert(rec_tm[j] == NONE || has(fired, j) || rec_tm[j] >= c);
		j++
	:: else -> break
	od;
	j = 0;
	c = 0
}

/* process(): apply every due item (time < upto) of this worker in time
 * order: the records in its logs, but those of bins awaiting acquisition
 * (collect()), and the timers of the bins it holds (the timer heap). */
inline process(t, x, b, c, j)
{
	do
	:: t = NONE;
		x = NONE;
		j = 0;
		do
		:: j < NR ->
			b = rec_bin[j];
			if
			:: has(logm[w], j) && !DEFERRED(b) &&
			   rec_time[j] < upto && rec_time[j] < t ->
				t = rec_time[j];
				x = j
			:: else
			fi;
			if
			:: HELD(b) && has(tpend[b], j) && rec_tm[j] < upto &&
			   rec_tm[j] < t ->
				t = rec_tm[j];
				x = TM + j
			:: else
			fi;
			j++
		:: else -> break
		od;
		if
		:: x == NONE -> break
		:: x < TM -> /* call_bin() with a record */
			b = rec_bin[x];
			touch(b, t, c, j);
			assert(!has(applied, x) && !has(bst[b], x));
			printf("MSC: w%d applies record %d (bin %d, time %d)\n",
			       w, x, b, t);
			applied = applied | bit(x);
			bst[b] = bst[b] | bit(x);
			logm[w] = logm[w] & ~bit(x);
			if
			:: rec_tm[x] != NONE -> /* mg_schedule() */
				tpend[b] = tpend[b] | bit(x)
			:: else
			fi
		:: else -> /* call_bin() with a due timer */
			x = x - TM;
			b = rec_bin[x];
			touch(b, t, c, j);
			assert(!has(fired, x));
			printf("MSC: w%d fires timer %d (bin %d, time %d)\n",
			       w, x, b, t);
			fired = fired | bit(x);
			tpend[b] = tpend[b] & ~bit(x)
		fi
	od;
	t = 0;
	x = 0;
	b = 0
}

/* ---- control side: mg_router_submit() / mg_router_advance() -------------- */

#ifdef FOLD
/* A move is folded into the base map once its step is complete (every
 * move of the step acquired).  Fixed: never before an earlier move of
 * the same bin.  BUG_FOLD_ANY_ORDER is fold() in migration/router.c. */
#define STEP_DONE(s)	((mvdone & step_mask[s]) == step_mask[s])
#ifdef BUG_FOLD_ANY_ORDER
#define EARLIER_OPEN(j)	0
#else
#define EARLIER_OPEN(j)	((~folded & (bit(j) - 1) & bin_mask[mv_bin[j]]) != 0)
#endif
#define FOLDABLE(j)	(j < PUBM && !has(folded, j) && \
			 STEP_DONE(mv_step[j]) && !EARLIER_OPEN(j))
hidden byte step_mask[NS], bin_mask[NB];
#endif

#ifdef PUB_ALL
#define PUBLISH	pub = NS	/* the whole plan in one submission */
#else
#define PUBLISH	pub++		/* a submission per step */
#endif

proctype control()
{
	byte j;

	do
	:: d_step { /* mg_router_submit(): publish the next step's moves */
#ifdef BUG_FRONTIER_FIRST
		pub < NS -> PUBLISH;
#else
		pub < NS && step_time[pub] >= ctl -> PUBLISH;
#endif
		printf("MSC: control publishes steps < %d\n", pub)
	   }
	:: d_step { /* mg_router_advance(): only past published moves */
#ifdef BUG_FRONTIER_FIRST
		ctl < INF -> ctl++;
#else
		ctl < INF && (pub == NS || step_time[pub] > ctl) -> ctl++;
#endif
		printf("MSC: control frontier %d\n", ctl)
	   }
#ifdef FOLD
	:: d_step { /* fold(), then publish() the folded version */
		FOLDABLE(0) || FOLDABLE(1) || FOLDABLE(2) ->
		j = 0;
		do
		:: j < NM ->
			if
			:: FOLDABLE(j) ->
				base[mv_bin[j]] = mv_to[j];
				folded = folded | bit(j);
				printf("MSC: control folds move %d\n", j)
			:: else
			fi;
			j++
		:: else -> break
		od;
		j = 0
	   }
#endif
	:: pub == NS && ctl == INF -> break
	od
}

/* ---- sources: source_step(), send_record(), send_flush() ----------------- */

/* send_record() to worker d, send_flush()'s mark on every channel */
#ifdef FIFO
inline deliver(d, k)
{
	if
	:: d == 0 -> o0 ! k
	:: d == 1 -> o1 ! k
#if W > 2
	:: d == 2 -> o2 ! k
#endif
	fi
}

inline mark(m)
{
	o0 ! MK + m;
	o1 ! MK + m;
#if W > 2
	o2 ! MK + m
#endif
}
#else
inline deliver(d, k)
{
	assert(rec_time[k] >= pu[d]); /* log_batch()'s MG_ASSERT */
	logm[d] = logm[d] | bit(k)
}

inline mark(m)
{
	sf[s] = m
}
#endif

proctype source(byte s)
{
#ifdef FIFO
	chan o0 = ch[s * W + 0], o1 = ch[s * W + 1];
#if W > 2
	chan o2 = ch[s * W + 2];
#endif
#endif
	byte k, mk, d, j;

#ifdef FIFO
	xs o0;
	xs o1;
#if W > 2
	xs o2;
#endif
#endif
	k = src_lo[s];
	do
	:: d_step { /* stamp a record below the control frontier (read with
		     * acquire), then route it by the table read after */
		k < src_hi[s] && rec_time[k] < ctl ->
		route(rec_bin[k], rec_time[k], d, j);
		printf("MSC: source %d: record %d (bin %d, time %d) to w%d\n",
		       s, k, rec_bin[k], rec_time[k], d);
		deliver(d, k);
		k++;
		d = 0
	   }
	:: d_step { /* the source's frontier: below its next record and the
		     * control frontier; in-band on every channel */
		(k < src_hi[s] -> MIN(rec_time[k], ctl) : ctl) > mk ->
		mk = (k < src_hi[s] -> MIN(rec_time[k], ctl) : ctl);
		printf("MSC: source %d marks %d\n", s, mk);
		mark(mk)
	   }
	:: mk == INF -> break
	od
}

/* ---- workers: mg__stateful_step() ---------------------------------------- */

#if NSRC > 1
#define PORT_FRONTIER	MIN(cf0, cf1)
#else
#define PORT_FRONTIER	cf0
#endif
#ifdef FIFO
/* log_batch() for a record; for a mark, the port's frontier */
#define RECV(s, cfs) \
	atomic { \
		in##s ? x -> \
		if \
		:: x < MK -> \
			assert(rec_time[x] >= pu[w]); \
			logm[w] = logm[w] | bit(x) \
		:: else -> \
			cfs = x - MK; \
			fw = PORT_FRONTIER \
		fi; \
		x = 0 \
	}
#else
/* the port takes up the next time of source s's marks */
#define RECV(s, cfs) \
	d_step { \
		cfs < sf[s] -> \
		cfs++; \
		fw = PORT_FRONTIER \
	}
#endif

#ifdef COPY
/* copy_receive(): rebuild the bin from the bytes, mark it arrived */
#ifdef BUG_COPY_DROP_TIMERS
#define TIMERS_IN(tp)	0
#else
#define TIMERS_IN(tp)	tp
#endif
#define SEND_BIN(sout)	sout ! b, i + 1, bst[b], tpend[b]
/* the bin's state is in the message now: the sender keeps none of it */
#define SENT		bst[b] = 0; tpend[b] = 0
#define COPY_RECV(sin) \
	:: len(sin) > 0 -> \
		sin ? b, x, t, c; \
		bst[b] = t; \
		tpend[b] = TIMERS_IN(c); \
		token[b] = x; /* relaxed: only this worker reads it */ \
		b = 0; x = 0; t = 0; c = 0
#endif

/* learn_moves(): file the new moves of the table (one read of it) */
inline learn(i)
{
	printf("MSC: w%d steps, frontier %d, table %d moves\n", w, fw, PUBM);
	i = learned;
	do
	:: i < PUBM ->
		if
		:: !has(folded, i) && mv_from[i] == w -> outm = outm | bit(i)
		:: else
		fi;
		if
		:: !has(folded, i) && mv_to[i] == w ->
			inm = inm | bit(i);
			awt = awt | bit(mv_bin[i])
		:: else
		fi;
		i++
	:: else -> break
	od;
	learned = PUBM;
	i = 0
}

proctype worker(byte w)
{
#ifdef FIFO
	chan in0 = ch[0 * W + w];
#if NSRC > 1
	chan in1 = ch[1 * W + w];
#endif
#endif
#ifdef COPY
	chan sin0 = sch[0 * W + w], sin1 = sch[1 * W + w],
	     sin2 = sch[2 * W + w];
	chan sout0 = sch[w * W + 0], sout1 = sch[w * W + 1],
	     sout2 = sch[w * W + 2];
#endif
	byte cf0, cf1, fw, held, awt, inm, outm, learned;
	byte f, upto, before, i, j, t, x, b, c;

#ifdef FIFO
	xr in0;
#if NSRC > 1
	xr in1;
#endif
#endif
	d_step {
		b = 0;
		do
		:: b < NB ->
			if
			:: owner0[b] == w -> held = held | bit(b)
			:: else
			fi;
			b++
		:: else -> break
		od;
		b = 0
	}
	do
	:: RECV(0, cf0)
#if NSRC > 1
	:: RECV(1, cf1)
#endif
	:: d_step { STEP_GUARD ->
		f = fw; /* the ports were drained: their frontier */
#ifndef BUG_LEARN_FIRST
		learn(i) /* after receiving: the essay's step 0 */
#else
		skip
#endif
	   }
	   d_step {
#ifdef COPY
		do
		COPY_RECV(sin0)
		COPY_RECV(sin1)
		COPY_RECV(sin2)
		:: !COPY_PENDING -> break
		od;
#endif
		/* acquire_moves() */
		i = 0;
		do
		:: i < NM ->
			if
			:: TOK(i) -> /* ORDER(A7) */
				b = mv_bin[i];
				assert(g_owner[b] == NONE);
				printf("MSC: w%d acquires bin %d (move %d)\n",
				       w, b, i);
				g_owner[b] = w;
				held = held | bit(b);
				inm = inm & ~bit(i);
				j = 0;
				x = 0; /* again: another move of b still in */
				do
				:: j < NM ->
					x = x | (has(inm, j) && mv_bin[j] == b);
					j++
				:: else -> break
				od;
				if
				:: x -> skip
				:: else -> awt = awt & ~bit(b)
				fi;
				mvdone = mvdone | bit(i); /* mg_step_done() */
				b = 0;
				j = 0;
				x = 0
			:: else
			fi;
			i++
		:: else -> break
		od;
		i = 0
	   }
	   d_step {
		/* process up to the frontier, never past a departure while
		 * the bin is here; release it there, then go on */
		do
		:: upto = MIN(EARLIEST_OUT, f);
			assert(upto >= pu[w]);
			process(t, x, b, c, j);
			pu[w] = upto;
			if
			:: outm == 0 -> break
			:: else
			fi;
			before = outm;
			/* release_moves() */
			i = 0;
			do
			:: i < NM ->
				if
				:: REL(i) ->
					b = mv_bin[i];
					held = held & ~bit(b);
					printf("MSC: w%d releases %d\n", w, b);
					g_owner[b] = NONE;
					outm = outm & ~bit(i);
#ifdef COPY
					/* copy_release(), copy_send(); or, a copy
					 * out of memory, the handoff's release
					 * store (copymode.c) */
					if
					:: mv_to[i] == 0 -> SEND_BIN(sout0); SENT
					:: mv_to[i] == 1 -> SEND_BIN(sout1); SENT
					:: mv_to[i] == 2 -> SEND_BIN(sout2); SENT
					:: token[b] = i + 1 /* ORDER(R7) */
					fi;
#else
					token[b] = i + 1; /* ORDER(R7) */
#endif
					b = 0
				:: else
				fi;
				i++
			:: else -> break
			od;
			i = 0;
			if
			:: outm == before || upto == f -> break
			:: else
			fi
		od;
		/* the output frontier: held below every awaited arrival;
		 * it goes out as marks, which never go back (the ring's I2) */
		assert(DONE_UPTO >= du[w]);
		du[w] = DONE_UPTO;
		printf("MSC: w%d output frontier %d\n", w, du[w]);
#ifdef BUG_LEARN_FIRST
		learn(i); /* for the next step, before its receives */
#endif
		frontier_check(j, c);
		f = 0;
		upto = 0;
		before = 0
	   }
	:: FINISHED -> break
	od
}

/* ---- set-up and the final check ------------------------------------------ */

inline rec(r, b, t, tm)
{
	rec_bin[r] = b;
	rec_time[r] = t;
	rec_tm[r] = tm
}

inline move(m, s, t, b, from, to)
{
	mv_step[m] = s;
	mv_time[m] = t;
	mv_bin[m] = b;
	mv_from[m] = from;
	mv_to[m] = to;
	step_time[s] = t;
	step_end[s] = m + 1
}

init
{
	byte i, j, b;

	d_step {
		i = 0;
		do
		:: i < MAXM -> mv_time[i] = INF; mv_bin[i] = 0; i++
		:: else -> break
		od;
#ifdef CFG_BASIC
		owner0[0] = 0;
		owner0[1] = 1;
		/* source 0: bin 0 at 0 (a timer at 2), bin 0 at 1 */
		rec(0, 0, 0, 2);
		rec(1, 0, 1, NONE);
		src_lo[0] = 0;
		src_hi[0] = 2;
		/* source 1: bin 1 at 0, bin 0 at 2 */
		rec(2, 1, 0, NONE);
		rec(3, 0, 2, NONE);
		src_lo[1] = 2;
		src_hi[1] = 4;
		move(0, 0, 1, 0, 0, 1);
#endif
#ifdef CFG_CHAIN
		owner0[0] = 0;
		/* at 0 on A, a timer for 2 (it fires on C); at 1 on B, a
		 * timer for 3 (it crosses two hops and fires on A); at 3 on A,
		 * back home (deferred there until C's release) */
		rec(0, 0, 0, 2);
		rec(1, 0, 1, 3);
		rec(2, 0, 3, NONE);
		src_lo[0] = 0;
		src_hi[0] = 3;
		move(0, 0, 1, 0, 0, 1);
		move(1, 1, 2, 0, 1, 2);
		move(2, 2, 3, 0, 2, 0);
#endif
#ifdef CFG_FOLD
		owner0[0] = 0;
		owner0[1] = 1;
		/* bin 0 at 0 and at 2; bin 1 at 1 */
		rec(0, 0, 0, NONE);
		rec(1, 1, 1, NONE);
		rec(2, 0, 2, NONE);
		src_lo[0] = 0;
		src_hi[0] = 3;
		move(0, 0, 1, 0, 0, 1);
		move(1, 0, 1, 1, 1, 0);
		move(2, 1, 2, 0, 1, 2);
		i = 0;
		do
		:: i < NM ->
			step_mask[mv_step[i]] = step_mask[mv_step[i]] | bit(i);
			bin_mask[mv_bin[i]] = bin_mask[mv_bin[i]] | bit(i);
			i++
		:: else -> break
		od;
#endif
		/* the atomicity of a worker's step rests on it (see the
		 * essay): each worker is the new owner in at most one move */
		b = 0;
		do
		:: b < W ->
			j = 0;
			i = 0;
			do
			:: i < NM -> j = j + (mv_to[i] == b); i++
			:: else -> break
			od;
			assert(j <= 1);
			b++
		:: else -> break
		od;
		b = 0;
		do
		:: b < NB ->
			base[b] = owner0[b];
			g_owner[b] = owner0[b];
			b++
		:: else -> break
		od;
		i = 0;
		b = 0
	}
	atomic {
		run control();
		i = 0;
		do
		:: i < NSRC -> run source(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < W -> run worker(i); i++
		:: else -> break
		od;
		i = 0
	}
	/* Everything ended: every record applied once, every timer fired
	 * once, each bin's state holds exactly its records, each bin is
	 * with its final owner. */
	(_nr_pr == 1) ->
	d_step {
		assert(applied == bit(NR) - 1);
		j = 0;
		do
		:: j < NR ->
			assert(rec_tm[j] == NONE || has(fired, j));
			assert(has(bst[rec_bin[j]], j));
			j++
		:: else -> break
		od;
		b = 0;
		do
		:: b < NB ->
			config(b, INF, i, j);
			assert(g_owner[b] == i);
			b++
		:: else -> break
		od
	}
}

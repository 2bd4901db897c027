/*
 * migwait.pml - a Promela model of mg_migration_wait() and its notifiers
 * (engine/migrate.c, "Waiting"), checked exhaustively by spin (`make
 * check-model`).
 *
 * WHAT IS MODELLED
 *
 * One migration of one step with NMOVES moves, the dataflow's futex word
 * wake_seq, the count of migration waiters (mig_waiters), and:
 *
 *   waiter   NWAIT threads in mg_migration_wait(): mig_waiters++, then the
 *            loop -- read wake_seq, check (the step complete: done; the
 *            run's error; every worker exited: reap, then done or
 *            -ECANCELED), futex_wait (blocks while wake_seq is unchanged;
 *            its time-out, a safety net, is left out so that no wait may
 *            depend on it) -- then mig_waiters--.
 *   worker   NWORKERS workers: each may carry out one move of the step
 *            (mg_step_done() in acquire_moves(); the one whose move
 *            completes the step calls mg__migrations_wake()), or not (the
 *            run ends first), then exits (pub.done, mg__migrations_wake()).
 *   halt     optionally (HALT) mg__halt(): the error, then wake_seq++ and a
 *            wake whoever waits.
 *
 * mg__migrations_wake(): if mig_waiters: wake_seq++ and wake all.  reap()'s
 * own wake is left out: no wait for a step with moves needs the control
 * thread to end.
 * Memory order is not modelled (the steps are sequentially consistent):
 * the fences mig.F1 / mig.F2 and the pair mig.R1 / mig.A1 make the real
 * code behave so at these points; this model checks the protocol they
 * order.
 *
 * CHECKED
 *   - no lost wake-up: every process ends (pan reports an invalid end
 *     state if a waiter sleeps forever);
 *   - a wait says 0 only for a complete step, -ECANCELED only for one that
 *     can no longer complete (every worker gone) and never after the step
 *     completed, the error only after the halt.
 *
 * SEEDED BUGS (each must fail):
 *   BUG_COUNT_LATE   the waiter counts itself after its check: a move that
 *            completes the step between the two sees nobody to wake;
 *   BUG_SEQ_LATE     the waiter reads wake_seq after its check: a wake in
 *            between is slept through;
 *   BUG_NO_EXIT_WAKE the workers do not wake at exit: a wait for a step the
 *            run left undone sleeps forever (with the time-out: a second).
 */
#ifndef NMOVES
#define NMOVES 2
#endif
#ifndef NWORKERS
#define NWORKERS 2
#endif
#ifndef NWAIT
#define NWAIT 2
#endif

#define OK        0
#define CANCELED  1
#define FAILED    2
#define NONE      3

byte remaining = NMOVES; /* moves of the step not yet done */
byte wake_seq = 0;
byte mig_waiters = 0;
byte exited = 0;
bool error = false;
byte result[NWAIT];

inline wake()
{
	if
	:: mig_waiters > 0 -> wake_seq++
	:: else -> skip
	fi
}

proctype waiter(byte id)
{
	byte seq;
	bool counted = false;

	result[id] = NONE;
#ifndef BUG_COUNT_LATE
	mig_waiters++;
	counted = true;
#endif
	do
	::
#ifndef BUG_SEQ_LATE
		seq = wake_seq;
#endif
		if
		:: remaining == 0 -> result[id] = OK; break
		:: else -> skip
		fi;
		if
		:: error -> result[id] = FAILED; break
		:: else -> skip
		fi;
		if
		:: exited == NWORKERS ->
			/* reap under the lock: final now */
			if
			:: remaining == 0 -> result[id] = OK
			:: else -> result[id] = CANCELED
			fi;
			break
		:: else -> skip
		fi;
#ifdef BUG_SEQ_LATE
		seq = wake_seq;
#endif
#ifdef BUG_COUNT_LATE
		if
		:: !counted -> mig_waiters++; counted = true
		:: else -> skip
		fi;
#endif
		/* futex_wait(&wake_seq, seq): sleeps while unchanged */
		wake_seq != seq
	od;
	if
	:: counted -> mig_waiters--
	:: else -> skip
	fi;
	assert(result[id] != OK || remaining == 0);
	assert(result[id] != CANCELED || (remaining > 0 && exited == NWORKERS));
	assert(result[id] != FAILED || error)
}

proctype worker()
{
	if
	:: atomic { remaining > 0 -> remaining-- };
		/* mg_step_done(), then the step's last move wakes */
		if
		:: remaining == 0 -> wake()
		:: else -> skip
		fi
	:: skip /* the run ends before this worker's move */
	fi;
	exited++;
#ifndef BUG_NO_EXIT_WAKE
	wake()
#endif
}

proctype halt()
{
	error = true;
	wake_seq++ /* mg__halt(): always */
}

init {
	byte i;

	atomic {
		for (i : 0 .. NWAIT - 1) {
			run waiter(i)
		}
		for (i : 1 .. NWORKERS) {
			run worker()
		}
#ifdef HALT
		run halt();
#endif
	}
}

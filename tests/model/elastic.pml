/*
 * elastic.pml - a Promela model of parking and waking a worker (engine/
 * elastic.c, host_parked() in engine/worker.c), checked exhaustively by
 * spin (`make check-model`).
 *
 * WHAT IS MODELLED
 *
 * One worker that may park, its `run` word (enum run_state; `rs` here,
 * run being Promela's), the event
 * count its thread sleeps on (park_seq) and the hosts' hint (nhosted), and
 * three processes, each step of which stands for:
 *
 *   thread   mg__worker_main() of the worker: its own rounds while run is
 *            OWN or PARK_REQ; at PARK_REQ (mg__elastic_park_due(): it is
 *            empty) mg__elastic_park(): nhosted++, the CAS PARK_REQ ->
 *            HOSTED (or nhosted-- and on), then the sleep loop -- read
 *            park_seq, read run, leave unless still hosted, futex_wait
 *            (blocks while park_seq is unchanged); back to its own rounds
 *            on OWN or PARK_REQ, over on DONE.  When the run ends (`ending`,
 *            its streams closed) an own round is its last: run = DONE.
 *   host     an active thread's host_parked(): with nhosted > 0, the CAS
 *            HOSTED -> CLAIMED, one round, then HOSTED -- or, the run
 *            ending, DONE with nhosted-- and a wake (park_seq++).
 *   ctl      NOPS calls of mg__set_active() in any order: unpark() (the
 *            loop: OWN or DONE: done; CLAIMED: wait for the host; else the
 *            CAS to OWN, from HOSTED with nhosted-- and a wake) or park()
 *            (the CAS OWN -> PARK_REQ); then the run ends.
 *
 * Memory order is not modelled (the steps are sequentially consistent):
 * the ORDER comments of elastic.c argue each hand-over's release/acquire
 * pair; this model checks the state machine they implement.
 *
 * CHECKED
 *   - one runner at a time: the thread runs a round only while run is OWN
 *     or PARK_REQ, the host only while it holds CLAIMED;
 *   - no lost wake-up, no worker left unrun: every process ends (pan
 *     reports an invalid end state if the thread sleeps forever while no
 *     host may claim its worker) -- run DONE and nhosted 0 at the end;
 *   - nhosted counts the hosted worker: never HOSTED with nhosted 0 (the
 *     hosts would skip it), at the end 0.
 *
 * SEEDED BUGS (each must fail):
 *   BUG_SLEEP_ON_PARK_REQ  the sleep loop left only on OWN or DONE, as
 *            before the fix: woken by one set_active and asked to park
 *            again by the next before it ran, the thread slept on at
 *            PARK_REQ, neither hosted nor woken (the hang t-engine-elastic's
 *            test_repark reproduces);
 *   BUG_HINT_AFTER_CAS     nhosted raised after the CAS to HOSTED: an unpark
 *            in between takes it below zero (a byte: 255), and hosts may
 *            see HOSTED with the hint 0.
 */
#ifndef NOPS
#define NOPS 4
#endif

mtype = { OWN, PARK_REQ, HOSTED, CLAIMED, DONE };

mtype rs = OWN;
byte park_seq = 0;
byte nhosted = 0;
bool ending = false;
bool thread_over = false;

/* never hosted while the hosts' hint says no one is */
#define HINT_OK (rs != HOSTED || nhosted > 0)

active proctype thread()
{
	byte seq;
	mtype s;
	bool ok;

own:
	do
	:: ending ->
		/* the last own round: its streams ended */
		assert(rs == OWN || rs == PARK_REQ);
		rs = DONE;
		goto over
	:: rs == PARK_REQ -> /* park_due (relaxed), then park */
#ifndef BUG_HINT_AFTER_CAS
		nhosted++;
#endif
		/* the CAS PARK_REQ -> HOSTED (release) */
		atomic {
			if
			:: rs == PARK_REQ -> rs = HOSTED; ok = true
			:: else -> ok = false
			fi
		};
#ifdef BUG_HINT_AFTER_CAS
		nhosted++;
#endif
		if
		:: !ok -> nhosted--; goto own /* withdrawn */
		:: else -> skip
		fi;
		do
		:: seq = park_seq;
			s = rs;
#ifdef BUG_SLEEP_ON_PARK_REQ
			if
			:: s == OWN || s == DONE -> break
			:: else -> skip
			fi;
#else
			if
			:: s != HOSTED && s != CLAIMED -> break
			:: else -> skip
			fi;
#endif
			/* futex_wait(&park_seq, seq): sleeps while unchanged */
			park_seq != seq
		od;
		if
		:: s == DONE -> goto over
		:: else -> skip /* OWN or PARK_REQ: its own again */
		fi
	:: !ending && rs != HOSTED && rs != CLAIMED ->
		/* an own round */
		assert(rs == OWN || rs == PARK_REQ)
	od;
over:
	thread_over = true
}

active proctype host()
{
	do
	:: atomic { rs == HOSTED && nhosted > 0 -> rs = CLAIMED };
		/* one round of the parked worker */
		assert(rs == CLAIMED);
		if
		:: ending ->
			/* its last: DONE, the hint, the wake */
			rs = DONE;
			nhosted--;
			park_seq++
		:: else -> rs = HOSTED
		fi
	:: rs == DONE && thread_over -> break
	od
}

active proctype ctl()
{
	byte i = 0;
	mtype s;
	bool ok;

	do
	:: i < NOPS ->
		i++;
		if
		:: /* unpark() */
			do
			:: s = rs;
				if
				:: s == OWN || s == DONE -> break
				:: s == CLAIMED -> rs != CLAIMED /* wait */
				:: else ->
					atomic {
						if
						:: rs == s -> rs = OWN; ok = true
						:: else -> ok = false
						fi
					};
					if
					:: ok && s == HOSTED ->
						nhosted--;
						park_seq++; /* wake() */
						break
					:: ok && s != HOSTED -> break
					:: else -> skip /* changed: again */
					fi
				fi
			od
		:: /* park() */
			atomic {
				if
				:: rs == OWN -> rs = PARK_REQ
				:: else -> skip
				fi
			}
		fi
	:: else -> break
	od;
	ending = true
}

/* at every end state (pan checks the processes have ended) */
never {
	do
	:: !HINT_OK -> break
	:: else -> skip
	od
}

active proctype final()
{
	timeout ->
	assert(thread_over && rs == DONE && nhosted == 0)
}

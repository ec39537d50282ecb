/* signals.c - how the worker is told to stop.
 *
 * The signals are blocked in every thread and taken by one thread with sigwait(), so no
 * handler ever runs in the middle of libcurl or malloc. The first SIGTERM, SIGINT or SIGHUP
 * starts a drain (no new claims; running items finish); a second one, or SIGQUIT, stops the
 * running items now; one more ends the process at once (the keepers then kill their
 * groups, and the server requeues the items when their leases run out).
 *
 * SIGHUP drains rather than kills: a closed terminal or a restarting session manager must
 * not take running items down with the worker. */
#include "worker/worker_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static pthread_t signal_thread;
static int signal_thread_running;

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
}

static void *signal_loop(void *arg)
{
	struct worker *w = arg;
	sigset_t set;
	stop_signals(&set);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		int sig;
		/* Cancellation is allowed only inside sigwait, never while the lock is held. */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		int rc = sigwait(&set, &sig);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (rc != 0)
			continue;
		const char *name = sigabbrev_np(sig);
		pthread_mutex_lock(&w->mu);
		if (sig != SIGQUIT && !atomic_load(&w->draining)) {
			atomic_store(&w->draining, 1);
			char running[16];
			snprintf(running, sizeof(running), "%d", w->running);
			log_event(LOG_INFO, "draining", "signal", name, "running", running, NULL);
		} else if (atomic_load(&w->aborting)) {
			/* Told three times: whatever is still going (a stop to an unreachable
			 * server, a child's grace period) is not worth waiting for. */
			log_event(LOG_WARN, "exiting_now", "signal", name, NULL);
			_exit(1);
		} else {
			atomic_store(&w->draining, 1);
			atomic_store(&w->aborting, 1);
			log_event(LOG_WARN, "stopping_now", "signal", name, NULL);
			for (int i = 0; i < w->cfg->concurrency; i++)
				if (w->slots[i].busy)
					slot_wake(&w->slots[i]);
		}
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

int signals_start(struct worker *w)
{
	sigset_t set;
	stop_signals(&set);
	/* Blocked before any other thread exists, so every thread inherits the mask. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	/* A write to a closed socket or pipe must be an error, not the end of the worker. */
	struct sigaction ign;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, NULL);
	if (pthread_create(&signal_thread, NULL, signal_loop, w) != 0)
		return -1;
	signal_thread_running = 1;
	return 0;
}

void signals_stop(void)
{
	if (!signal_thread_running)
		return;
	/* sigwait is a cancellation point; the thread holds no lock while it waits. */
	pthread_cancel(signal_thread);
	pthread_join(signal_thread, NULL);
	signal_thread_running = 0;
}

/* pg_bus.c - wake-ups between the nodes of a fleet, over PostgreSQL's LISTEN/NOTIFY, and
 * the database's clock for leases (see pg_bus.h).
 *
 * One thread owns one connection. It LISTENs on the channel, sends what this node
 * publishes (coalesced: one NOTIFY carries every key queued since the last one), and
 * hands what other nodes publish to the deliver callback. Every SYNC_US it reads the
 * database's clock and lets this node's lease clock follow it.
 *
 * When the connection drops, the thread reconnects with a growing pause (up to 1 s) and
 * then delivers a wake of everything (key NULL): a notification sent while it was away is
 * lost, so every held poll and stream looks again for itself. */
#include "store/pg_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"
#include "store/db_pg.h"

#define CHANNEL "environd"
#define PAYLOAD_MAX 7000 /* PostgreSQL's limit is 8000 bytes */
#define QUEUE_MAX 4096
#define SYNC_US (5 * 1000000LL)
#define KEY_MAX 128

struct pending {
	char key[KEY_MAX];
	size_t n;
};

struct pg_bus {
	char *url;
	char node[17]; /* this node's random id: its own notifications come back and are skipped */
	pg_bus_deliver_fn deliver;
	void *arg;
	pthread_t thread;
	int pipe_r, pipe_w;
	pthread_mutex_t lock;
	struct pending *queue;
	size_t queued;
	atomic_int stopping;
	atomic_int up;            /* LISTENing now */
	atomic_int leads;         /* holds the sweeper's lock: this node expires leases */
	_Atomic uint64_t epoch;   /* moves at every connect and every loss */
	int ready; /* 1 once the first LISTEN is in place */
	pthread_cond_t ready_cond;
};

static void sleep_us(int64_t us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static int exec_ok(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}

/* The database's clock, read between two readings of ours. */
static void sync_clock(PGconn *pg)
{
	int64_t before = clock_mono_us();
	PGresult *r = PQexec(pg, "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint");
	int64_t after = clock_mono_us();
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		clock_lease_follow(strtoll(PQgetvalue(r, 0, 0), NULL, 10), before + (after - before) / 2);
	PQclear(r);
}

/* One node of a fleet sweeps expired leases and turns: the one whose bus connection holds
 * this session lock. When it dies, its connection goes and so does the lock, and another
 * node's next try (every LEAD_TRY_US) takes over. */
#define LEAD_LOCK 0x656e7673776565LL /* "envswee" */
#define LEAD_TRY_US (1000000LL)

static void try_lead(struct pg_bus *b, PGconn *pg)
{
	if (atomic_load(&b->leads))
		return;
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", LEAD_LOCK);
	PGresult *r = PQexec(pg, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't') {
		atomic_store(&b->leads, 1);
		log_event(LOG_INFO, "sweeper_leads", NULL);
	}
	PQclear(r);
}

/* Lines of "N KEY" after the sender's id on the first line. The id "-" is nobody's: a
 * notification a transaction sent at its commit (a revocation) reaches every node. */
static void deliver_payload(struct pg_bus *b, const char *payload)
{
	const char *nl = strchr(payload, '\n');
	if (!nl)
		return;
	size_t id_len = (size_t)(nl - payload);
	int anyone = id_len == 1 && payload[0] == '-';
	if (!anyone && (id_len != strlen(b->node) || memcmp(payload, b->node, id_len) == 0))
		return; /* ours, or not one of ours at all */
	const char *p = nl + 1;
	while (*p) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char line[KEY_MAX + 32];
		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			char *sp = strchr(line, ' ');
			if (sp && sp[1]) {
				*sp = '\0';
				b->deliver(b->arg, sp + 1, (size_t)strtoull(line, NULL, 10));
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
}

/* Send what is queued: as few NOTIFYs as the payload limit allows. */
static int flush(struct pg_bus *b, PGconn *pg)
{
	pthread_mutex_lock(&b->lock);
	struct pending *items = b->queue;
	size_t n = b->queued;
	b->queue = NULL;
	b->queued = 0;
	pthread_mutex_unlock(&b->lock);
	int ok = 1;
	char payload[PAYLOAD_MAX + KEY_MAX + 64];
	size_t i = 0;
	while (ok && i < n) {
		size_t len = (size_t)snprintf(payload, sizeof(payload), "%s\n", b->node);
		while (i < n && len < PAYLOAD_MAX) {
			len += (size_t)snprintf(payload + len, sizeof(payload) - len, "%zu %s\n", items[i].n, items[i].key);
			i++;
		}
		const char *params[2] = {CHANNEL, payload};
		PGresult *r = PQexecParams(pg, "SELECT pg_notify($1, $2)", 2, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	free(items);
	return ok;
}

static PGconn *connect_listen(struct pg_bus *b)
{
	PGconn *pg = db_pg_connect(b->url);
	if (!pg || PQstatus(pg) != CONNECTION_OK || !exec_ok(pg, "LISTEN " CHANNEL)) {
		if (pg)
			log_event(LOG_WARN, "bus_connect_failed", "error", db_pg_message(pg), NULL);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

static void *bus_main(void *arg)
{
	struct pg_bus *b = arg;
	int64_t pause = 100 * 1000;
	int lost = 0;
	while (!b->stopping) {
		PGconn *pg = connect_listen(b);
		if (!pg) {
			lost = 1;
			for (int64_t slept = 0; slept < pause && !b->stopping; slept += 20000)
				sleep_us(20000);
			pause = pause * 2 > 1000000 ? 1000000 : pause * 2;
			continue;
		}
		pause = 100 * 1000;
		atomic_fetch_add(&b->epoch, 1);
		atomic_store(&b->up, 1);
		sync_clock(pg);
		try_lead(b, pg);
		pthread_mutex_lock(&b->lock);
		b->ready = 1;
		pthread_cond_broadcast(&b->ready_cond);
		pthread_mutex_unlock(&b->lock);
		if (lost) {
			log_event(LOG_INFO, "bus_reconnected", NULL);
			b->deliver(b->arg, NULL, 0);
			lost = 0;
		}
		int64_t next_sync = clock_mono_us() + SYNC_US, next_lead = clock_mono_us() + LEAD_TRY_US;
		while (!b->stopping) {
			int64_t due = atomic_load(&b->leads) || next_sync < next_lead ? next_sync : next_lead;
			int64_t wait_ms = (due - clock_mono_us()) / 1000;
			struct pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {b->pipe_r, POLLIN, 0}};
			int n = poll(fds, 2, wait_ms > 0 ? (int)wait_ms : 0);
			if (n < 0 && errno != EINTR)
				break;
			if (fds[1].revents & POLLIN) {
				char drain[64];
				while (read(b->pipe_r, drain, sizeof(drain)) > 0)
					;
				if (!flush(b, pg))
					break;
			}
			if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
				if (!PQconsumeInput(pg))
					break;
				PGnotify *note;
				while ((note = PQnotifies(pg))) {
					deliver_payload(b, note->extra);
					PQfreemem(note);
				}
			}
			if (!atomic_load(&b->leads) && clock_mono_us() >= next_lead) {
				try_lead(b, pg);
				next_lead = clock_mono_us() + LEAD_TRY_US;
			}
			if (clock_mono_us() >= next_sync) {
				sync_clock(pg);
				next_sync = clock_mono_us() + SYNC_US;
			}
			if (PQstatus(pg) != CONNECTION_OK)
				break;
		}
		atomic_store(&b->up, 0);
		atomic_store(&b->leads, 0); /* the lock went with the connection */
		atomic_fetch_add(&b->epoch, 1);
		if (!b->stopping) {
			log_event(LOG_WARN, "bus_connection_lost", "error", db_pg_message(pg), NULL);
			lost = 1;
		}
		PQfinish(pg);
	}
	return NULL;
}

struct pg_bus *pg_bus_start(const char *url, pg_bus_deliver_fn deliver, void *arg)
{
	struct pg_bus *b = calloc(1, sizeof(*b));
	if (!b || !(b->url = strdup(url))) {
		free(b);
		return NULL;
	}
	unsigned char id[8];
	secret_random(id, sizeof(id));
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(b->node + 2 * i, 3, "%02x", id[i]);
	b->deliver = deliver;
	b->arg = arg;
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC)) {
		free(b->url);
		free(b);
		return NULL;
	}
	b->pipe_r = fds[0];
	b->pipe_w = fds[1];
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->ready_cond, NULL);
	if (pthread_create(&b->thread, NULL, bus_main, b)) {
		close(fds[0]);
		close(fds[1]);
		free(b->url);
		free(b);
		return NULL;
	}
	/* Held polls may park as soon as the server listens: wait (briefly) for the LISTEN, so
	 * that what other nodes publish from then on reaches them. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&b->lock);
	while (!b->ready && pthread_cond_timedwait(&b->ready_cond, &b->lock, &until) == 0)
		;
	pthread_mutex_unlock(&b->lock);
	return b;
}

void pg_bus_publish(struct pg_bus *b, const char *key, size_t n)
{
	if (!b || strlen(key) >= KEY_MAX || strchr(key, '\n'))
		return;
	pthread_mutex_lock(&b->lock);
	size_t i = 0;
	while (i < b->queued && strcmp(b->queue[i].key, key) != 0)
		i++;
	if (i < b->queued) {
		/* Already queued: n = 0 (everyone) wins, else the counts add up. */
		b->queue[i].n = b->queue[i].n && n ? b->queue[i].n + n : 0;
	} else if (b->queued < QUEUE_MAX) {
		struct pending *q = realloc(b->queue, (b->queued + 1) * sizeof(*q));
		if (q) {
			b->queue = q;
			snprintf(q[b->queued].key, KEY_MAX, "%s", key);
			q[b->queued].n = n;
			b->queued++;
		}
	}
	pthread_mutex_unlock(&b->lock);
	char one = 1;
	if (write(b->pipe_w, &one, 1) < 0 && errno != EAGAIN)
		log_event(LOG_WARN, "bus_signal_failed", "error", strerror(errno), NULL);
}

const char *pg_bus_node(struct pg_bus *b) { return b->node; }

int pg_bus_leads(struct pg_bus *b) { return atomic_load(&b->leads); }

int pg_bus_epoch(struct pg_bus *b, uint64_t *epoch)
{
	*epoch = atomic_load(&b->epoch);
	return atomic_load(&b->up) ? 0 : -1;
}

void pg_bus_stop(struct pg_bus *b)
{
	if (!b)
		return;
	b->stopping = 1;
	char one = 1;
	if (write(b->pipe_w, &one, 1) < 0)
		(void)0;
	pthread_join(b->thread, NULL);
	close(b->pipe_r);
	close(b->pipe_w);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->ready_cond);
	free(b->queue);
	free(b->url);
	free(b);
}

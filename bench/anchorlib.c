/* anchorlib.c - the anchor clients' command line and connections (see anchorlib.h). */
#include "anchorlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchlib.h"

void anchor_parse_options(int argc, char **argv, const char *usage, bool wake, struct anchor_options *o)
{
	enum { O_HOST = 256, O_PORT, O_WORKERS, O_ITEMS, O_SECONDS, O_WARMUP, O_TIMEOUT, O_JSON, O_HELP, O_BLOCK,
	       O_HOLD };
	static const struct option longopts[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"workers", required_argument, NULL, O_WORKERS},
		{"items", required_argument, NULL, O_ITEMS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		/* Only with `wake`: the terminator below is moved up to here without it. */
		{"block-ms", required_argument, NULL, O_BLOCK},
		{"hold-ms", required_argument, NULL, O_HOLD},
		{NULL, 0, NULL, 0},
	};
	struct option opts[sizeof(longopts) / sizeof(longopts[0])];
	memcpy(opts, longopts, sizeof(longopts));
	if (!wake)
		opts[9] = (struct option){NULL, 0, NULL, 0}; /* ends the list before block-ms */
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->workers = 1;
	o->block_ms = 999;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_HOST: o->host = optarg; break;
		case O_PORT: o->port = bench_parse_long("--port", optarg, 1, 65535); break;
		case O_WORKERS: o->workers = bench_parse_long("--workers", optarg, 1, ANCHOR_WORKERS_MAX); break;
		case O_ITEMS: o->items = bench_parse_long("--items", optarg, 1, BENCH_ITEMS_MAX); break;
		case O_SECONDS: o->seconds = bench_parse_double("--seconds", optarg, 0.1, 3600); break;
		case O_WARMUP: o->warmup = bench_parse_long("--warmup", optarg, 0, BENCH_ITEMS_MAX); break;
		case O_TIMEOUT: o->timeout = bench_parse_double("--timeout", optarg, 1, 7200); break;
		case O_JSON: o->json = true; break;
		case O_BLOCK: o->block_ms = bench_parse_long("--block-ms", optarg, 1, 999); break;
		case O_HOLD: o->hold_ms = bench_parse_long("--hold-ms", optarg, 1, 500); break;
		case O_HELP: fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); exit(2);
		}
	}
	if (optind < argc)
		bench_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->port)
		bench_die("--port is required");
	bench_check_run_options(o->items, &o->seconds, o->warmup, o->hold_ms, o->block_ms, &o->timeout);
}

int anchor_connect(const struct anchor_options *o)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1)
		bench_die("--host: not an IPv4 address: %s", o->host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		bench_die("connect %s:%ld: %s", o->host, o->port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void anchor_send(int fd, const char *buf, size_t len, const char *what)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bench_die("send %s: %s", what, n < 0 ? strerror(errno) : "wrote nothing");
		off += (size_t)n;
	}
}

bool anchor_fill(int fd, char *buf, size_t *len, size_t cap, bool wait)
{
	if (*len == cap)
		bench_die("reply longer than %zu bytes", cap);
	ssize_t n;
	do
		n = recv(fd, buf + *len, cap - *len, wait ? 0 : MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n < 0)
		bench_die("recv: %s", strerror(errno));
	if (n == 0)
		return false;
	*len += (size_t)n;
	return true;
}

void anchor_consume(char *buf, size_t *len, size_t used)
{
	memmove(buf, buf + used, *len - used);
	*len -= used;
}

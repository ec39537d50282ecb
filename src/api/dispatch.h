/* dispatch.h - the HTTP server's callbacks into the API (see dispatch.c). */
#ifndef ENVIROND_API_DISPATCH_H
#define ENVIROND_API_DISPATCH_H

#include "http/server.h"

void app_dispatch(void *app, struct http_request *r);
void app_done(void *app, struct http_request *r, int reached_client);

#endif

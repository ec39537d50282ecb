/* dispatch.h - the HTTP server's callbacks into the API (see dispatch.c). */
#ifndef ENVIROND_API_DISPATCH_H
#define ENVIROND_API_DISPATCH_H

#include "http/server.h"

void app_dispatch(void *app, struct http_request *r);
void app_done(void *app, struct http_request *r, int reached_client);
/* True when METHOD ("*" for any) and pattern name a route of the table that test-mode
 * faults may target (every route but the test routes). */
int api_route_faultable(const char *method, const char *pattern);

#endif

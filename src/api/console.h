/* console.h - GET /console and /console/{file}: the web console's static files.
 *
 * Public routes (no credential, no beta header): the pages hold nothing but code; every
 * API call the console makes carries the operator's key like any other client. */
#ifndef ENVIROND_API_CONSOLE_H
#define ENVIROND_API_CONSOLE_H

#include "api/call.h"

/* Serves console/index.html for /console and the file named by the last segment for
 * /console/{file}, looked up by exact name in the embedded table; anything else is a 404. */
enum err console_get(struct call *c);

#endif

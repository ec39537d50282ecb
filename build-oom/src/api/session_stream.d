build-oom/src/api/session_stream.o: src/api/session_stream.c \
 src/api/sessions.h src/api/call.h src/api/app.h src/api/seen.h \
 src/http/server.h src/common/buf.h src/common/ids.h src/model/cursor.h \
 src/common/err.h src/store/store.h src/common/secret.h \
 src/model/environment.h src/model/session.h src/model/work.h \
 src/wait/waiters.h src/common/jsonw.h src/http/router.h \
 src/common/clock.h src/common/log.h
src/api/sessions.h:
src/api/call.h:
src/api/app.h:
src/api/seen.h:
src/http/server.h:
src/common/buf.h:
src/common/ids.h:
src/model/cursor.h:
src/common/err.h:
src/store/store.h:
src/common/secret.h:
src/model/environment.h:
src/model/session.h:
src/model/work.h:
src/wait/waiters.h:
src/common/jsonw.h:
src/http/router.h:
src/common/clock.h:
src/common/log.h:

build-oom/src/http/server.o: src/http/server.c src/http/server.h \
 src/common/buf.h src/common/ids.h src/common/clock.h src/common/log.h \
 src/http/framing.h src/http/guard.h src/http/reply.h src/common/err.h
src/http/server.h:
src/common/buf.h:
src/common/ids.h:
src/common/clock.h:
src/common/log.h:
src/http/framing.h:
src/http/guard.h:
src/http/reply.h:
src/common/err.h:

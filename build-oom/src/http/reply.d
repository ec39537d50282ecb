build-oom/src/http/reply.o: src/http/reply.c src/http/reply.h \
 src/common/buf.h src/common/err.h src/http/server.h src/common/ids.h \
 src/common/jsonw.h src/common/log.h
src/http/reply.h:
src/common/buf.h:
src/common/err.h:
src/http/server.h:
src/common/ids.h:
src/common/jsonw.h:
src/common/log.h:

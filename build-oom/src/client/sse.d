build-oom/src/client/sse.o: src/client/sse.c src/client/sse.h \
 src/common/buf.h
src/client/sse.h:
src/common/buf.h:

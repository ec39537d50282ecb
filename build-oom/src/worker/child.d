build-oom/src/worker/child.o: src/worker/child.c src/worker/worker_int.h \
 src/client/client.h src/common/buf.h src/worker/worker.h \
 src/common/clock.h src/common/log.h
src/worker/worker_int.h:
src/client/client.h:
src/common/buf.h:
src/worker/worker.h:
src/common/clock.h:
src/common/log.h:

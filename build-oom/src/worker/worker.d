build-oom/src/worker/worker.o: src/worker/worker.c src/worker/worker.h \
 src/common/buf.h src/common/clock.h src/common/log.h src/worker/ticks.h \
 src/worker/worker_int.h src/client/client.h
src/worker/worker.h:
src/common/buf.h:
src/common/clock.h:
src/common/log.h:
src/worker/ticks.h:
src/worker/worker_int.h:
src/client/client.h:

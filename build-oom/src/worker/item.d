build-oom/src/worker/item.o: src/worker/item.c src/worker/worker_int.h \
 src/client/client.h src/common/buf.h src/worker/worker.h \
 src/common/clock.h src/common/log.h src/worker/run_as.h \
 src/worker/ticks.h src/common/secret.h
src/worker/worker_int.h:
src/client/client.h:
src/common/buf.h:
src/worker/worker.h:
src/common/clock.h:
src/common/log.h:
src/worker/run_as.h:
src/worker/ticks.h:
src/common/secret.h:

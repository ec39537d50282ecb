build-oom/src/worker/signals.o: src/worker/signals.c \
 src/worker/worker_int.h src/client/client.h src/common/buf.h \
 src/worker/worker.h src/common/log.h
src/worker/worker_int.h:
src/client/client.h:
src/common/buf.h:
src/worker/worker.h:
src/common/log.h:

build-oom/src/worker/child_data.o: src/worker/child_data.c \
 src/worker/worker_int.h src/client/client.h src/common/buf.h \
 src/worker/worker.h
src/worker/worker_int.h:
src/client/client.h:
src/common/buf.h:
src/worker/worker.h:

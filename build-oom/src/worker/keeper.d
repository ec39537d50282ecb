build-oom/src/worker/keeper.o: src/worker/keeper.c \
 src/worker/worker_int.h src/client/client.h src/common/buf.h \
 src/worker/worker.h
src/worker/worker_int.h:
src/client/client.h:
src/common/buf.h:
src/worker/worker.h:

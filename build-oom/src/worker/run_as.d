build-oom/src/worker/run_as.o: src/worker/run_as.c src/worker/run_as.h \
 src/worker/worker.h
src/worker/run_as.h:
src/worker/worker.h:

build-oom/src/worker/protect.o: src/worker/protect.c src/worker/worker.h
src/worker/worker.h:

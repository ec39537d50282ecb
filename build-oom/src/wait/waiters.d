build-oom/src/wait/waiters.o: src/wait/waiters.c src/wait/waiters.h \
 src/common/ids.h src/common/clock.h
src/wait/waiters.h:
src/common/ids.h:
src/common/clock.h:

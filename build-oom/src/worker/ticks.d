build-oom/src/worker/ticks.o: src/worker/ticks.c src/worker/ticks.h \
 src/common/clock.h
src/worker/ticks.h:
src/common/clock.h:

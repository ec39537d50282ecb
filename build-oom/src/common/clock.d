build-oom/src/common/clock.o: src/common/clock.c src/common/clock.h
src/common/clock.h:

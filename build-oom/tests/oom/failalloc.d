build-oom/tests/oom/failalloc.o: tests/oom/failalloc.c

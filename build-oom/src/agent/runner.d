build-oom/src/agent/runner.o: src/agent/runner.c src/agent/runner_int.h \
 src/agent/runner.h src/client/client.h src/common/buf.h \
 src/common/clock.h src/common/log.h
src/agent/runner_int.h:
src/agent/runner.h:
src/client/client.h:
src/common/buf.h:
src/common/clock.h:
src/common/log.h:

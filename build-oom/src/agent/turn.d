build-oom/src/agent/turn.o: src/agent/turn.c src/agent/runner_int.h \
 src/agent/runner.h src/client/client.h src/common/buf.h src/agent/echo.h \
 src/client/session_paths.h src/common/log.h
src/agent/runner_int.h:
src/agent/runner.h:
src/client/client.h:
src/common/buf.h:
src/agent/echo.h:
src/client/session_paths.h:
src/common/log.h:

build-oom/src/cli/cmd_worker.o: src/cli/cmd_worker.c src/cli/commands.h \
 src/client/client.h src/common/buf.h src/client/credential.h \
 src/common/cfg.h src/common/log.h src/worker/run_as.h \
 src/worker/worker.h src/worker/ticks.h src/worker/worker_int.h
src/cli/commands.h:
src/client/client.h:
src/common/buf.h:
src/client/credential.h:
src/common/cfg.h:
src/common/log.h:
src/worker/run_as.h:
src/worker/worker.h:
src/worker/ticks.h:
src/worker/worker_int.h:

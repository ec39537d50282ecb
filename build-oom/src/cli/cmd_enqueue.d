build-oom/src/cli/cmd_enqueue.o: src/cli/cmd_enqueue.c src/cli/commands.h \
 src/client/client.h src/common/buf.h src/client/credential.h \
 src/common/cfg.h
src/cli/commands.h:
src/client/client.h:
src/common/buf.h:
src/client/credential.h:
src/common/cfg.h:

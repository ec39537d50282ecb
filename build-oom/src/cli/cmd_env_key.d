build-oom/src/cli/cmd_env_key.o: src/cli/cmd_env_key.c src/cli/commands.h \
 src/client/client.h src/common/buf.h src/client/credential.h \
 src/common/cfg.h
src/cli/commands.h:
src/client/client.h:
src/common/buf.h:
src/client/credential.h:
src/common/cfg.h:

build-oom/src/cli/cmd_session.o: src/cli/cmd_session.c src/cli/api_cli.h \
 src/client/client.h src/common/buf.h src/common/cfg.h src/cli/commands.h \
 src/cli/session_watch.h
src/cli/api_cli.h:
src/client/client.h:
src/common/buf.h:
src/common/cfg.h:
src/cli/commands.h:
src/cli/session_watch.h:

build-oom/src/cli/cmd_agent.o: src/cli/cmd_agent.c src/agent/echo.h \
 src/agent/runner.h src/cli/api_cli.h src/client/client.h \
 src/common/buf.h src/common/cfg.h src/cli/commands.h \
 src/client/credential.h src/common/log.h
src/agent/echo.h:
src/agent/runner.h:
src/cli/api_cli.h:
src/client/client.h:
src/common/buf.h:
src/common/cfg.h:
src/cli/commands.h:
src/client/credential.h:
src/common/log.h:

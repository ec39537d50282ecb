build-oom/src/cli/api_cli.o: src/cli/api_cli.c src/cli/api_cli.h \
 src/client/client.h src/common/buf.h src/common/cfg.h \
 src/client/credential.h
src/cli/api_cli.h:
src/client/client.h:
src/common/buf.h:
src/common/cfg.h:
src/client/credential.h:

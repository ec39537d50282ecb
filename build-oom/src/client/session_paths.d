build-oom/src/client/session_paths.o: src/client/session_paths.c \
 src/client/session_paths.h src/common/buf.h src/client/client.h
src/client/session_paths.h:
src/common/buf.h:
src/client/client.h:

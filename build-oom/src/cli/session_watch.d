build-oom/src/cli/session_watch.o: src/cli/session_watch.c \
 src/cli/session_watch.h src/client/client.h src/common/buf.h \
 src/cli/session_render.h src/client/sse.h src/client/session_paths.h
src/cli/session_watch.h:
src/client/client.h:
src/common/buf.h:
src/cli/session_render.h:
src/client/sse.h:
src/client/session_paths.h:

build-oom/src/cli/session_render.o: src/cli/session_render.c \
 src/cli/session_render.h src/common/buf.h
src/cli/session_render.h:
src/common/buf.h:

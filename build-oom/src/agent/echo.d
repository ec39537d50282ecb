build-oom/src/agent/echo.o: src/agent/echo.c src/agent/echo.h \
 src/common/buf.h
src/agent/echo.h:
src/common/buf.h:

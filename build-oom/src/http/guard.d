build-oom/src/http/guard.o: src/http/guard.c src/http/guard.h \
 src/common/clock.h src/common/log.h
src/http/guard.h:
src/common/clock.h:
src/common/log.h:

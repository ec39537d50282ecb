build-oom/src/common/log.o: src/common/log.c src/common/log.h \
 src/common/buf.h src/common/clock.h src/common/jsonw.h
src/common/log.h:
src/common/buf.h:
src/common/clock.h:
src/common/jsonw.h:

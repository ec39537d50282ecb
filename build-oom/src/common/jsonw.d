build-oom/src/common/jsonw.o: src/common/jsonw.c src/common/jsonw.h \
 src/common/buf.h src/common/clock.h
src/common/jsonw.h:
src/common/buf.h:
src/common/clock.h:

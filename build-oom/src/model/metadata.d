build-oom/src/model/metadata.o: src/model/metadata.c src/model/metadata.h \
 src/common/err.h src/common/buf.h
src/model/metadata.h:
src/common/err.h:
src/common/buf.h:

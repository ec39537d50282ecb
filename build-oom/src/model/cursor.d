build-oom/src/model/cursor.o: src/model/cursor.c src/model/cursor.h \
 src/common/err.h src/common/ids.h src/common/buf.h src/common/secret.h
src/model/cursor.h:
src/common/err.h:
src/common/ids.h:
src/common/buf.h:
src/common/secret.h:

build-oom/src/api/encode.o: src/api/encode.c src/api/encode.h \
 src/common/jsonw.h src/common/buf.h src/store/store.h src/common/err.h \
 src/common/ids.h src/common/secret.h src/model/cursor.h \
 src/model/environment.h src/model/session.h src/model/work.h
src/api/encode.h:
src/common/jsonw.h:
src/common/buf.h:
src/store/store.h:
src/common/err.h:
src/common/ids.h:
src/common/secret.h:
src/model/cursor.h:
src/model/environment.h:
src/model/session.h:
src/model/work.h:

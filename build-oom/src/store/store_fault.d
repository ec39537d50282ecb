build-oom/src/store/store_fault.o: src/store/store_fault.c \
 src/store/store.h src/common/err.h src/common/ids.h src/common/secret.h \
 src/model/cursor.h src/model/environment.h src/model/session.h \
 src/model/work.h
src/store/store.h:
src/common/err.h:
src/common/ids.h:
src/common/secret.h:
src/model/cursor.h:
src/model/environment.h:
src/model/session.h:
src/model/work.h:

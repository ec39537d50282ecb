build-oom/src/store/sqlite_agent.o: src/store/sqlite_agent.c \
 src/store/sqlite_int.h src/store/store.h src/common/err.h \
 src/common/ids.h src/common/secret.h src/model/cursor.h \
 src/model/environment.h src/model/session.h src/model/work.h \
 src/model/agent.h
src/store/sqlite_int.h:
src/store/store.h:
src/common/err.h:
src/common/ids.h:
src/common/secret.h:
src/model/cursor.h:
src/model/environment.h:
src/model/session.h:
src/model/work.h:
src/model/agent.h:

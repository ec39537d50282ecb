build-oom/src/model/session.o: src/model/session.c src/model/session.h \
 src/common/err.h src/common/ids.h src/common/clock.h src/model/agent.h \
 src/model/fields.h src/model/metadata.h
src/model/session.h:
src/common/err.h:
src/common/ids.h:
src/common/clock.h:
src/model/agent.h:
src/model/fields.h:
src/model/metadata.h:

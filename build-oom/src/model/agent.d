build-oom/src/model/agent.o: src/model/agent.c src/model/agent.h \
 src/common/err.h src/model/fields.h src/model/metadata.h
src/model/agent.h:
src/common/err.h:
src/model/fields.h:
src/model/metadata.h:

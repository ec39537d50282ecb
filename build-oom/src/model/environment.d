build-oom/src/model/environment.o: src/model/environment.c \
 src/model/environment.h src/common/err.h src/common/ids.h \
 src/model/fields.h src/model/metadata.h
src/model/environment.h:
src/common/err.h:
src/common/ids.h:
src/model/fields.h:
src/model/metadata.h:

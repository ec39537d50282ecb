build-oom/src/model/fields.o: src/model/fields.c src/model/fields.h \
 src/common/err.h
src/model/fields.h:
src/common/err.h:

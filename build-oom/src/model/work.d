build-oom/src/model/work.o: src/model/work.c src/model/work.h \
 src/common/err.h
src/model/work.h:
src/common/err.h:

build-oom/src/api/seen.o: src/api/seen.c src/api/seen.h src/common/ids.h \
 src/common/log.h
src/api/seen.h:
src/common/ids.h:
src/common/log.h:

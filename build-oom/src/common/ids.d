build-oom/src/common/ids.o: src/common/ids.c src/common/ids.h \
 src/common/clock.h src/common/secret.h
src/common/ids.h:
src/common/clock.h:
src/common/secret.h:

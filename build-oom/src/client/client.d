build-oom/src/client/client.o: src/client/client.c src/client/client.h \
 src/common/buf.h
src/client/client.h:
src/common/buf.h:

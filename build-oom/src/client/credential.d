build-oom/src/client/credential.o: src/client/credential.c \
 src/client/credential.h src/client/client.h src/common/buf.h
src/client/credential.h:
src/client/client.h:
src/common/buf.h:

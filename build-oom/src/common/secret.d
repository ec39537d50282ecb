build-oom/src/common/secret.o: src/common/secret.c src/common/secret.h
src/common/secret.h:

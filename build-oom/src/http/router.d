build-oom/src/http/router.o: src/http/router.c src/http/router.h
src/http/router.h:

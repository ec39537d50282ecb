build-oom/src/http/framing.o: src/http/framing.c src/http/framing.h
src/http/framing.h:

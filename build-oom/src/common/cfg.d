build-oom/src/common/cfg.o: src/common/cfg.c src/common/cfg.h
src/common/cfg.h:

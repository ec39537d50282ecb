build-oom/src/model/json_bound.o: src/model/json_bound.c \
 src/model/json_bound.h src/common/err.h
src/model/json_bound.h:
src/common/err.h:

# The core: a static PIC library linked into both plugins and the tools.
CORE_SRC := $(wildcard common/*.c)
CORE_OBJ := $(patsubst common/%.c,$(B)/common/%.o,$(CORE_SRC))
CORE_LIB := $(B)/libmhcore.a
ALL += $(CORE_LIB)

$(B)/common/%.o: common/%.c common/*.h | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fvisibility=hidden -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

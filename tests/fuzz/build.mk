# libFuzzer harness of the option/pin/argument and registry entry parsers.
#   make fuzz [FUZZ_SECONDS=60]   build and run it (clang, ASan, LeakSanitizer)
# Built from the core's sources with clang, independent of $(CC).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= $(shell command -v clang-14 || command -v clang || echo clang)
FUZZ_BIN     := $(B)/mh-fuzz
FUZZ_SRC     := tests/fuzz/fuzz.c $(wildcard common/*.c) openvpn-plugin/helper.c

$(FUZZ_BIN): $(FUZZ_SRC) common/*.h openvpn-plugin/helper.h | $(B)
	$(FUZZ_CC) -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Icommon $(MNL_CFLAGS) -o $@ $(FUZZ_SRC) $(PKG_LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

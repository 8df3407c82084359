# mh-unit: unit tests of the core (no root, no kernel).
UNIT := $(B)/mh-unit
TESTBIN += $(UNIT)

UNIT_SRC := tests/unit/unit.c tests/unit/plan.c tests/unit/delta.c

$(UNIT): $(UNIT_SRC) tests/unit/unit.h $(CORE_LIB) common/*.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $(UNIT_SRC) $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)

unit: $(UNIT)
	$(UNIT)

# mh-unit: unit tests of the core (no root, no kernel).
UNIT := $(B)/mh-unit
TESTBIN += $(UNIT)

$(UNIT): tests/unit/unit.c $(CORE_LIB) common/*.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ tests/unit/unit.c $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)

unit: $(UNIT)
	$(UNIT)

# mh-unit: unit tests of the core (no root, no kernel; nlsock.c opens netlink sockets and sends nothing to the kernel).
UNIT := $(B)/mh-unit
TESTBIN += $(UNIT)

UNIT_SRC := tests/unit/unit.c tests/unit/plan.c tests/unit/delta.c tests/unit/registry_fd.c tests/unit/ovpn_helper.c \
	    tests/unit/health.c tests/unit/nlsock.c openvpn-plugin/helper.c

$(UNIT): $(UNIT_SRC) tests/unit/unit.h openvpn-plugin/helper.h $(CORE_LIB) common/*.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $(UNIT_SRC) $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)

unit: $(UNIT)
	$(UNIT)

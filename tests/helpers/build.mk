# Test helpers: mh-probe, the bounded TCP/UDP prober of the namespace tests;
# mh-udpflow, long-lived UDP flows with keepalives both ways; mh-ct, a
# conntrack lister (which entries an event touched); mh-ovpn-forge below.
PROBE := $(B)/mh-probe
UDPFLOW := $(B)/mh-udpflow
CTLIST := $(B)/mh-ct
TESTBIN += $(PROBE) $(UDPFLOW) $(CTLIST)

$(PROBE): tests/helpers/probe.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<

$(UDPFLOW): tests/helpers/udpflow.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<

$(CTLIST): tests/helpers/ct.c | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(PKG_LIBS)

# mh-ovpn-forge: a compromised OpenVPN's requests to the root helper (tests/openvpn/forged.sh).
OVPN_FORGE := $(B)/mh-ovpn-forge
TESTBIN += $(OVPN_FORGE)

$(OVPN_FORGE): tests/helpers/ovpn-forge.c openvpn-plugin/helper.h common/mh.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $<

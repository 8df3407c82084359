# Test helpers: mh-probe, the bounded TCP/UDP prober of the namespace tests;
# mh-ovpn-forge below.
PROBE := $(B)/mh-probe
TESTBIN += $(PROBE)

$(PROBE): tests/helpers/probe.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<

# mh-ovpn-forge: a compromised OpenVPN's requests to the root helper (tests/openvpn/forged.sh).
OVPN_FORGE := $(B)/mh-ovpn-forge
TESTBIN += $(OVPN_FORGE)

$(OVPN_FORGE): tests/helpers/ovpn-forge.c openvpn-plugin/helper.h common/mh.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $<

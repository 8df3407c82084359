# The OpenVPN plugin: build/multihome-openvpn.so, the core linked in statically,
# exporting only OpenVPN's entry points (exports.map).
OVPN_SRC := openvpn-plugin/multihome-openvpn.c openvpn-plugin/helper.c
OVPN_OBJ := $(patsubst openvpn-plugin/%.c,$(B)/openvpn-plugin/%.o,$(OVPN_SRC))
OVPN_SO  := $(B)/multihome-openvpn.so
ALL += $(OVPN_SO)

$(B)/openvpn-plugin/%.o: openvpn-plugin/%.c openvpn-plugin/helper.h common/mh.h | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fvisibility=hidden -c -o $@ $<

$(OVPN_SO): $(OVPN_OBJ) $(CORE_LIB) openvpn-plugin/exports.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=openvpn-plugin/exports.map \
		-Wl,-z,defs -Wl,-z,relro -Wl,-z,now -o $@ $(OVPN_OBJ) $(CORE_LIB) $(PKG_LIBS)

.PHONY: openvpn-plugin
openvpn-plugin: $(OVPN_SO)

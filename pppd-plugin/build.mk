# pppd plugin: build/multihome.so, for the installed pppd (2.4.9 on Debian 12).
# Only pppd_version and plugin_init are exported; the core is linked in.
PPPD_PLUGIN := $(B)/multihome.so
PPPD_CFLAGS := $(shell pkg-config --cflags pppd 2>/dev/null)
ALL += $(PPPD_PLUGIN)

$(B)/pppd-plugin/%.o: pppd-plugin/%.c common/mh.h | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PPPD_CFLAGS) $(CFLAGS) -fvisibility=hidden -c -o $@ $<

$(PPPD_PLUGIN): $(B)/pppd-plugin/multihome.o $(CORE_LIB)
	$(CC) $(CFLAGS) -shared -fvisibility=hidden -Wl,--exclude-libs,ALL -o $@ $< $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)

# multihomectl, and `make install`.
#   make install [PREFIX=/usr/local] [DESTDIR=]
# pppd looks for plugins in its compiled-in directory, not under PREFIX:
# PPPD_PLUGIN_DIR, from pppd-plugin/build.mk (`pkg-config pppd
# --variable=plugindir` on 2.5, /usr/lib/pppd/VERSION on 2.4).  OpenVPN's
# plugins live in $(PREFIX)/lib/$(MULTIARCH)/openvpn/plugins.
CTL      := $(B)/multihomectl
CTL_SRC  := tools/multihomectl.c tools/check.c tools/report.c tools/status.c tools/metrics.c \
	    tools/reapply.c
CTL_OBJ  := $(patsubst tools/%.c,$(B)/tools/%.o,$(CTL_SRC))
ALL += $(CTL)

$(B)/tools/%.o: tools/%.c tools/ctl.h common/mh.h common/plan.h common/status.h | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(CTL): $(CTL_OBJ) $(CORE_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CTL_OBJ) $(CORE_LIB) $(PKG_LIBS)

.PHONY: multihomectl
multihomectl: $(CTL)

PREFIX    ?= /usr/local
DESTDIR   ?=
INSTALL   ?= install
MULTIARCH ?= $(shell $(CC) -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
OPENVPN_PLUGIN_DIR ?= $(PREFIX)/lib/$(if $(MULTIARCH),$(MULTIARCH)/)openvpn/plugins
SBINDIR   ?= $(PREFIX)/sbin
MAN8DIR   ?= $(PREFIX)/share/man/man8
RT_PROTOS_DIR ?= /etc/iproute2/rt_protos.d

install: $(PPPD_PLUGIN) $(OVPN_SO) $(CTL)
	@test -n "$(PPPD_VERSION)$(filter-out /usr/lib/pppd/,$(PPPD_PLUGIN_DIR))" || { echo "install: no pppd version in the headers of $(PPPD_FOUND_BY) (package ppp-dev); set PPPD_INCLUDE= or PPPD_PLUGIN_DIR=" >&2; exit 1; }
	$(INSTALL) -d $(DESTDIR)$(PPPD_PLUGIN_DIR) $(DESTDIR)$(OPENVPN_PLUGIN_DIR) \
		$(DESTDIR)$(SBINDIR) $(DESTDIR)$(MAN8DIR) $(DESTDIR)$(RT_PROTOS_DIR)
	$(INSTALL) -m 0644 $(PPPD_PLUGIN) $(DESTDIR)$(PPPD_PLUGIN_DIR)/multihome.so
	$(INSTALL) -m 0644 $(OVPN_SO) $(DESTDIR)$(OPENVPN_PLUGIN_DIR)/multihome-openvpn.so
	$(INSTALL) -m 0755 $(CTL) $(DESTDIR)$(SBINDIR)/multihomectl
	$(INSTALL) -m 0644 man/multihome.8 man/multihomectl.8 $(DESTDIR)$(MAN8DIR)/
	$(INSTALL) -m 0644 etc/rt_protos.d/multihome.conf $(DESTDIR)$(RT_PROTOS_DIR)/multihome.conf

.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PPPD_PLUGIN_DIR)/multihome.so \
		$(DESTDIR)$(OPENVPN_PLUGIN_DIR)/multihome-openvpn.so \
		$(DESTDIR)$(SBINDIR)/multihomectl $(DESTDIR)$(MAN8DIR)/multihome.8 \
		$(DESTDIR)$(MAN8DIR)/multihomectl.8 $(DESTDIR)$(RT_PROTOS_DIR)/multihome.conf

#!/bin/sh
# deb: postrm remove|purge|upgrade|...; rpm: %postun 0 (erase) or 1 (upgrade).
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
case "$1" in
    purge)
        # Debian purge: the configuration, the job database and the service user go too.
        rm -rf /var/lib/mosaic-watch /etc/mosaic-watch
        if [ -d /run/systemd/system ]; then
            systemctl reset-failed mosaic-watch.service >/dev/null 2>&1 || true
        fi
        if getent passwd mosaic-watch >/dev/null 2>&1; then
            if command -v userdel >/dev/null 2>&1; then userdel mosaic-watch || true; else deluser --system mosaic-watch || true; fi
        fi
        if getent group mosaic-watch >/dev/null 2>&1; then
            if command -v groupdel >/dev/null 2>&1; then groupdel mosaic-watch || true; else delgroup --system mosaic-watch || true; fi
        fi
        ;;
esac
exit 0

#!/bin/sh
# deb: prerm remove|upgrade|deconfigure; rpm: %preun 0 (erase) or 1 (upgrade).
set -e
case "$1" in
    remove|deconfigure|0)
        if [ -d /run/systemd/system ]; then
            systemctl disable --now mosaic-watch.service >/dev/null 2>&1 || true
        fi
        ;;
esac
exit 0

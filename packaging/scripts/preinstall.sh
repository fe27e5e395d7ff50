#!/bin/sh
# Create the system user the service runs as (deb: preinst install|upgrade; rpm: %pre 1|2).
set -e
if ! getent group mosaic-watch >/dev/null 2>&1; then
    if command -v groupadd >/dev/null 2>&1; then
        groupadd --system mosaic-watch
    else
        addgroup --system mosaic-watch
    fi
fi
if ! getent passwd mosaic-watch >/dev/null 2>&1; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --gid mosaic-watch --home-dir /var/lib/mosaic-watch --no-create-home \
            --shell "$nologin" --comment "mosaic-watch service" mosaic-watch
    else
        adduser --system --ingroup mosaic-watch --home /var/lib/mosaic-watch --no-create-home \
            --shell "$nologin" --gecos "mosaic-watch service" mosaic-watch
    fi
fi
exit 0

#!/bin/sh
# deb: postinst configure [old-version]; rpm: %post 1 (install) or 2 (upgrade).
set -e
chown mosaic-watch:mosaic-watch /var/lib/mosaic-watch
chmod 0750 /var/lib/mosaic-watch
chown root:mosaic-watch /etc/mosaic-watch /etc/mosaic-watch/config.yaml
chmod 0750 /etc/mosaic-watch
chmod 0640 /etc/mosaic-watch/config.yaml

upgrade=no
case "$1" in
    configure) [ -n "$2" ] && upgrade=yes ;;
    2) upgrade=yes ;;
esac

# Only talk to systemd when it runs (not in containers or chroots).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ "$upgrade" = yes ]; then
        # Pick up the new binary if the service was running; resumes where it stopped.
        systemctl try-restart mosaic-watch.service >/dev/null 2>&1 || true
    fi
fi

if [ "$upgrade" = no ]; then
    cat <<'MSG'
mosaic-watch is installed. To run it as a service:
  1. Edit /etc/mosaic-watch/config.yaml (folders, agent ids) and put the API key in
     /etc/mosaic-watch/environment (MOSAIC_API_KEY=mk_...).
  2. Check it:  sudo -u mosaic-watch mosaic-watch validate --config /etc/mosaic-watch/config.yaml
  3. Start it:  systemctl enable --now mosaic-watch
  Logs:         journalctl -u mosaic-watch -f
The service runs as user mosaic-watch: give it read/write access to your folders, and list
them in a drop-in (systemctl edit mosaic-watch) as RequiresMountsFor= and ReadWritePaths=.
MSG
fi
exit 0

#!/usr/bin/env bash
# Runs deploy/media-repo.service, exactly as shipped, under a real but throwaway systemd and
# checks that the hardened service serves: health, upload, download, thumbnails (a video still
# too when ffmpeg is installed), the sandbox it got, a clean stop, a reload. `systemd-analyze
# verify` only parses a unit; this shows that node, sharp, PGlite and ffmpeg tolerate it.
#
# systemd boots as PID 1 of new PID, mount and cgroup namespaces on an overlay of / whose upper
# layer is a tmpfs, with /proc/sys and /sys read-only and only sysinit.target plus the service
# started: the user, config and data it creates vanish with it. The network is shared.
# Needs root with CAP_SYS_ADMIN, a mounted cgroup2, node at /usr/bin/node (the unit's path),
# curl, and a build (npx tsc -p .). Not part of npm test: it is for whoever changes the unit.
set -euo pipefail

if [ "${1:-}" = --inner ]; then
  # PID 1 of the new namespaces: build the root, then become systemd.
  W=$2 REPO=$3 CONF=$4
  mount -t tmpfs -o mode=755 tmpfs "$W"
  mkdir -p "$W/upper" "$W/work" "$W/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
  R=$W/root
  mount -t proc proc "$R/proc"
  mount --bind "$R/proc/sys" "$R/proc/sys"; mount -o remount,bind,ro "$R/proc/sys"
  mount -t sysfs -o ro sysfs "$R/sys"
  mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
  mount -t tmpfs -o mode=755 tmpfs "$R/dev"
  for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
  mount -t tmpfs tmpfs "$R/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$R/run"
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  mkdir -p "$R/opt/media-repo"
  mount --bind "$REPO" "$R/opt/media-repo"; mount -o remount,bind,ro "$R/opt/media-repo"
  cp "$REPO/deploy/media-repo.service" "$R/etc/systemd/system/media-repo.service"
  printf '[Unit]\nDescription=sysinit and media-repo only\nWants=media-repo.service\n' > "$R/etc/systemd/system/unit-check.target"
  # Units that would touch the shared kernel or clock, or are pointless here.
  for u in systemd-modules-load.service systemd-sysctl.service systemd-binfmt.service systemd-timesyncd.service \
           systemd-pstore.service proc-sys-fs-binfmt_misc.automount systemd-firstboot.service systemd-repart.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  # The README's install steps, inside the overlay.
  chroot "$R" useradd --system --home-dir /var/lib/media-repo --shell /usr/sbin/nologin media-repo
  mkdir -p "$R/etc/media-repo"; cp "$CONF" "$R/etc/media-repo/media-repo.yaml"
  chroot "$R" chown root:media-repo /etc/media-repo/media-repo.yaml; chmod 0640 "$R/etc/media-repo/media-repo.yaml"
  exec setpriv --bounding-set -sys_module,-sys_time,-sys_boot,-wake_alarm,-syslog \
    chroot "$R" /usr/bin/env -i container=media-repo-unit-check /lib/systemd/systemd --unit=unit-check.target --show-status=no
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-18471}
TOKEN=unit-check-token
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 2; }
[ -f "$REPO/dist/src/launcher.cjs" ] || { echo "build first: npx tsc -p ."; exit 2; }
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[ -n "$CG2" ] || { echo "no cgroup2 mount"; exit 2; }

CG=$CG2/media-repo-unit-check.$$
W=$(mktemp -d)
T=$(mktemp -d)
UNSHARE=
cleanup() {
  # Killing the namespace's PID 1 ends every process in it; then the (empty) cgroups go.
  [ -n "$UNSHARE" ] && kill -KILL "$UNSHARE" 2>/dev/null
  [ -n "${SD:-}" ] && kill -KILL "$SD" 2>/dev/null
  sleep 1
  [ -d "$CG" ] && find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
  rmdir "$W" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT

cat > "$T/media-repo.yaml" <<EOF
repo: { bindAddress: "127.0.0.1", port: $PORT }
homeservers: [{ name: "localhost", csApi: "http://127.0.0.1:1/" }]
datastores: [{ type: file, id: default, forKinds: ["all"], opts: { path: "data/media" } }]
sharedSecretAuth: { enabled: true, token: "$TOKEN" }
thumbnails: { types: ["image/png", "image/jpeg", "video/mp4"] }
EOF

mkdir -p "$CG"
# The child joins the fresh cgroup first, so that the cgroup namespace is rooted there.
setsid bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec unshare --mount --propagation private --pid --fork --cgroup "$@"' \
  _ "$CG" "$0" --inner "$W" "$REPO" "$T/media-repo.yaml" > "$T/boot.log" 2>&1 &
UNSHARE=$!
disown "$UNSHARE"  # its death at clean-up is expected, not news
for _ in $(seq 50); do SD=$(pgrep -P "$UNSHARE" || true); [ -n "$SD" ] && [ "$(cat /proc/"$SD"/comm 2>/dev/null)" = systemd ] && break; sleep 0.2; done
[ "$(cat /proc/"${SD:-0}"/comm 2>/dev/null)" = systemd ] || { cat "$T/boot.log"; echo "systemd did not start"; exit 1; }
sx() { nsenter -t "$SD" -m -p -C -r -w "$@"; }

fail=0
check() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected $3, got $2"; fail=1; fi; }
up() { for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0; sleep 1; done; return 1; }
req() { curl -s -o "$T/out" -w '%{http_code}' -H 'Host: localhost' -H "Authorization: Bearer $TOKEN" "$@"; }
upload() { curl -s -H 'Host: localhost' -H "Authorization: Bearer $TOKEN" -H "Content-Type: $2" --data-binary "@$1" \
  "http://127.0.0.1:$PORT/_matrix/media/v3/upload" | sed -E 's#.*mxc://localhost/([A-Za-z0-9_-]+).*#\1#'; }
prop() { sx systemctl show -p "$1" --value media-repo; }

if ! up; then sx journalctl -u media-repo --no-pager | tail -30; echo "FAIL: no answer on /healthz"; exit 1; fi
echo "ok   /healthz answers under systemd"
PID=$(prop MainPID)
status=$(sx cat "/proc/$PID/status")
check "runs as media-repo" "$(sx id -u media-repo)" "$(awk '/^Uid:/ {print $2}' <<< "$status")"
check "no new privileges" "$(awk '/^NoNewPrivs:/ {print $2}' <<< "$status")" 1
check "seccomp filter on" "$(awk '/^Seccomp:/ {print $2}' <<< "$status")" 2
check "no capabilities" "$(awk '/^CapBnd:/ {print $2}' <<< "$status")" 0000000000000000
# Field 5 of mountinfo is the mount point, field 6 its options, as the service sees them.
mnt() { sx awk -v m="$1" '$5 == m { split($6, o, ","); print o[1] }' "/proc/$PID/mountinfo" | tail -n 1; }
check "/ read-only (ProtectSystem=strict)" "$(mnt /)" ro
check "/var/lib/media-repo writable" "$(mnt /var/lib/media-repo)" rw
check "/home hidden (ProtectHome)" "$(sx awk '$5 == "/home" { n++ } END { print (n > 0) }' "/proc/$PID/mountinfo")" 1
check "jemalloc preloaded" "$(sx grep -c libjemalloc "/proc/$PID/maps" | awk '{print ($1 > 0)}')" 1

(cd "$T" && node -e "require('$REPO/node_modules/sharp')({create:{width:640,height:480,channels:3,background:'#c33'}}).png().toFile('img.png')")
IMG=$(upload "$T/img.png" image/png)
check "download" "$(req "http://127.0.0.1:$PORT/_matrix/client/v1/media/download/localhost/$IMG")" 200
cmp -s "$T/img.png" "$T/out" && echo "ok   downloaded bytes identical" || { echo "FAIL downloaded bytes differ"; fail=1; }
check "thumbnail (sharp in a worker)" "$(req "http://127.0.0.1:$PORT/_matrix/client/v1/media/thumbnail/localhost/$IMG?width=96&height=96")" 200
if command -v ffmpeg >/dev/null; then
  ffmpeg -loglevel error -f lavfi -i testsrc=size=320x240:rate=10 -t 1 -pix_fmt yuv420p "$T/vid.mp4"
  VID=$(upload "$T/vid.mp4" video/mp4)
  check "video still (ffmpeg child, private /tmp)" "$(req "http://127.0.0.1:$PORT/_matrix/client/v1/media/thumbnail/localhost/$VID?width=96&height=96")" 200
fi

sx systemctl reload media-repo
sleep 3; up || true
if [ "$(prop MainPID)" = "$PID" ]; then echo "ok   reload kept the process (SIGHUP handled)"
else echo "FAIL reload replaced the process: SIGHUP should reload in place"; fail=1; fi
check "serving after reload" "$(req "http://127.0.0.1:$PORT/_matrix/client/v1/media/download/localhost/$IMG")" 200

start=$(date +%s)
sx systemctl stop media-repo
check "clean stop" "$(prop Result)/$(prop ExecMainStatus)" success/0
echo "     stop took $(( $(date +%s) - start )) s (TimeoutStopSec $(prop TimeoutStopUSec))"
echo "     journal:"; sx journalctl -u media-repo --no-pager -o cat | tail -n 4 | sed 's/^/       /'
exit $fail

#!/usr/bin/env bash
# Build a local stand-in for the `python:3.11-slim` base image from Debian packages.
#
# Use this where Docker Hub cannot be reached (air-gapped hospital networks, CI
# sandboxes): it needs only a Debian mirror. The image it makes is Debian bookworm
# "minbase" with Python 3.11, venv and pip, `python` and `python3` on PATH, bash and
# sh (dash), and this machine's CA bundle (so pip trusts the same TLS roots as the
# host, including a site's own inspection proxy).
#
# Usage (as root, on a Debian/Ubuntu machine):
#   docker/build_base_image.sh [--force] [--daemon-only] [--mirror URL] [--tag NAME]
#
#   --force        rebuild even if the image already exists (default: skip)
#   --daemon-only  only install docker.io/debootstrap if missing and make sure a
#                  Docker daemon answers (starting dockerd if needed), then exit
#   --mirror URL   Debian mirror for debootstrap (default: the bookworm mirror that
#                  apt uses on this machine, from /etc/apt/sources.list*, else
#                  http://deb.debian.org/debian). A hospital's internal mirror works.
#   --tag NAME     image name to create (default: python:3.11-slim)
#
# Environment: DEBIAN_MIRROR (same as --mirror), DOCKERD_TIMEOUT (seconds to wait for
# a daemon this script starts, default 60).
#
# Fully offline machines: build the image on a connected machine, then move it:
#   docker save python:3.11-slim | gzip > python-3.11-slim.tar.gz   # connected side
#   docker load < python-3.11-slim.tar.gz                            # offline side
# (the same works for the finished medsam-laptop:latest image).
#
# If Docker Hub is reachable, `docker pull python:3.11-slim` gives the real image and
# this script is not needed; with the image present it does nothing.
set -euo pipefail

TAG="python:3.11-slim"
FORCE=0
DAEMON_ONLY=0
MIRROR="${DEBIAN_MIRROR:-}"
SUITE="bookworm"
DOCKERD_TIMEOUT="${DOCKERD_TIMEOUT:-60}"

log() { printf '[build_base_image] %s\n' "$*" >&2; }
die() { printf '[build_base_image] ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --daemon-only) DAEMON_ONLY=1 ;;
        --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR="$2"; shift ;;
        --tag) [ $# -ge 2 ] || die "--tag needs a name"; TAG="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian packages this script needs, only when a tool is missing.
ensure_packages() {
    local missing=()
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        missing+=(docker.io)
    fi
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "missing ${missing[*]} and no apt-get to install them; install them by hand"
    log "installing ${missing[*]} with apt-get"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "${missing[@]}"
}

# Start dockerd in the background if no daemon answers, and wait for it.
ensure_daemon() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 || die "no Docker daemon answers and dockerd is not installed"
    local logfile="${DOCKERD_LOG:-/tmp/dockerd.log}"
    log "no Docker daemon answers; starting dockerd (log: $logfile)"
    local pid
    pid="$(as_root sh -c "nohup dockerd >'$logfile' 2>&1 & echo \$!")"
    local waited=0
    until docker info >/dev/null 2>&1; do
        if ! as_root kill -0 "$pid" 2>/dev/null; then
            log "last lines of $logfile:"
            tail -n 20 "$logfile" >&2 2>/dev/null || true
            die "dockerd exited at start: $(grep -m1 -iE 'failed|error' "$logfile" 2>/dev/null | cut -c1-200 || echo "see $logfile")"
        fi
        if [ "$waited" -ge "$DOCKERD_TIMEOUT" ]; then
            log "last lines of $logfile:"
            tail -n 20 "$logfile" >&2 2>/dev/null || true
            die "dockerd did not come up within ${DOCKERD_TIMEOUT}s (see $logfile)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "dockerd is up after ${waited}s"
}

# Print the Debian mirror apt uses for $SUITE on this machine (one-line and deb822 formats).
detect_mirror() {
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    # One-line format: deb [opts] URI SUITE COMPONENTS...
    awk -v suite="$SUITE" '
        /^[[:space:]]*deb[[:space:]]/ {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit }
        }' "${files[@]}" | head -n 1
    # deb822 format: stanzas with URIs: and Suites: fields.
    awk -v suite="$SUITE" '
        function flush() {
            if (uris != "" && types ~ /(^| )deb( |$)/) {
                n = split(suites, s, " ")
                for (k = 1; k <= n; k++) if (s[k] == suite) { split(uris, u, " "); print u[1]; exit }
            }
            uris = ""; suites = ""; types = ""
        }
        /^[[:space:]]*$/ { flush(); next }
        /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
        /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
        /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
        END { flush() }' "${files[@]}" | head -n 1
}

ensure_packages
ensure_daemon
if [ "$DAEMON_ONLY" -eq 1 ]; then
    log "Docker daemon answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

if [ "$FORCE" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "image $TAG already exists; nothing to do (--force rebuilds it)"
    exit 0
fi

if [ -z "$MIRROR" ]; then
    MIRROR="$(detect_mirror | head -n 1)"
fi
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
log "Debian mirror: $MIRROR"

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/python-slim-rootfs.XXXXXX")"
cleanup() { as_root rm -rf "$ROOTFS"; }
trap cleanup EXIT

log "debootstrap $SUITE into $ROOTFS (takes a few minutes)"
as_root debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >&2 \
    || die "debootstrap failed (is $MIRROR reachable? try --mirror URL)"

# Trust the same TLS roots as the host (a site's inspection proxy, an internal index).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    as_root cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi

# python:3.11-slim has `python` on PATH; Debian's python3 package does not.
as_root ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"

# Trim what a runtime image never needs.
as_root rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
as_root find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
    -exec rm -rf {} + 2>/dev/null || true

log "importing the root file system as $TAG"
as_root tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null

docker run --rm --network none "$TAG" python -c 'import sys, venv, ensurepip; print(sys.version)' >&2 \
    || die "the new image $TAG does not run python"
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}'))"

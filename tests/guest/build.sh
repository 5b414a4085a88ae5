#!/usr/bin/env bash
# Build a tiny Linux guest (Debian cloud kernel + busybox initramfs) for the
# serialgw integration tests. The result is cached outside the repository:
#
#   ${SERIALGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serialgw}/guest/{vmlinuz,initrd.img}
#
# Idempotent: does nothing if both files already exist.
# Needs: apt-get/apt-cache/dpkg (Debian), cpio, gzip; installs busybox-static
# with apt-get if /bin/busybox is missing (root, or sudo).
#
# The guest boots with "console=ttyS0 sysrq_always_enabled=1 quiet panic=-1 no_timer_check",
# prints SERIALGW-GUEST-READY and runs an interactive busybox shell with job
# control on ttyS0, prompt "guest# ".
set -euo pipefail

cache="${SERIALGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serialgw}/guest"
kernel="$cache/vmlinuz"
initrd="$cache/initrd.img"

if [[ -s "$kernel" && -s "$initrd" ]]; then
    echo "$kernel"
    echo "$initrd"
    exit 0
fi

log() { echo "build.sh: $*" >&2; }

asroot() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        log "need root to run: $*"
        exit 1
    fi
}

mkdir -p "$cache"
work="$(mktemp -d "${TMPDIR:-/tmp}/serialgw-guest.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- kernel -----------------------------------------------------------------

# The metapackage depends on the concrete image, e.g.
#   Depends: linux-image-6.1.0-56-cloud-amd64
resolve_kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | sed -n 's/^ *|\?Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' \
        | head -n 1
}

if [[ ! -s "$kernel" ]]; then
    pkg="$(resolve_kernel_pkg || true)"
    if [[ -z "$pkg" ]]; then
        log "linux-image-cloud-amd64 not known to apt; running apt-get update"
        asroot apt-get update -q >&2
        pkg="$(resolve_kernel_pkg || true)"
    fi
    if [[ -z "$pkg" ]]; then
        log "could not resolve linux-image-cloud-amd64 to a kernel package"
        exit 1
    fi
    log "kernel package: $pkg"
    mkdir -p "$work/deb"
    # Let apt's unprivileged download user write here (avoids a warning).
    if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then
        chmod 755 "$work"
        chown _apt "$work/deb"
    fi
    (cd "$work/deb" && apt-get download -q "$pkg" >&2)
    dpkg -x "$work"/deb/"$pkg"_*.deb "$work/kroot"
    shopt -s nullglob
    images=("$work"/kroot/boot/vmlinuz-*)
    shopt -u nullglob
    if [[ ${#images[@]} -ne 1 ]]; then
        log "expected exactly one boot/vmlinuz-* in $pkg, found ${#images[@]}"
        exit 1
    fi
    # Everything the guest needs is built in (8250 serial + console, devtmpfs,
    # gzip initrd, magic sysrq over serial), so no modules go into the initrd.
    config=("$work"/kroot/boot/config-*)
    for opt in SERIAL_8250 SERIAL_8250_CONSOLE DEVTMPFS BLK_DEV_INITRD RD_GZIP \
               MAGIC_SYSRQ MAGIC_SYSRQ_SERIAL UNIX98_PTYS; do
        if ! grep -qx "CONFIG_$opt=y" "${config[0]}"; then
            log "warning: CONFIG_$opt is not built in to $pkg"
        fi
    done
    cp "${images[0]}" "$work/vmlinuz"
    mv -f "$work/vmlinuz" "$kernel"
fi

# --- initramfs ----------------------------------------------------------------

if [[ ! -s "$initrd" ]]; then
    if ! dpkg -s busybox-static >/dev/null 2>&1; then
        log "installing busybox-static"
        asroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2 \
            || { asroot apt-get update -q >&2 &&
                 asroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; }
    fi
    # busybox-static ships /bin/busybox (conflicts with the dynamic busybox).
    bb="$(dpkg -L busybox-static | grep -m1 -x '/bin/busybox\|/usr/bin/busybox')"

    root="$work/initramfs"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
    cp "$bb" "$root/bin/busybox"
    chmod 755 "$root/bin/busybox"
    # One symlink per applet, at the path busybox expects (bin/sh, sbin/...).
    "$root/bin/busybox" --list-full | while read -r applet; do
        [[ -e "$root/$applet" || -L "$root/$applet" ]] && continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -s /bin/busybox "$root/$applet"
    done
    chmod 1777 "$root/tmp"

    cat > "$root/init" <<'INIT'
#!/bin/busybox sh
# serialgw test guest init (PID 1)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=vt100
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
hostname guest
cd /root
echo SERIALGW-GUEST-READY
export PS1='guest# '
# Interactive shell with a controlling tty (job control) on the console
# (ttyS0); respawn it if it exits.
while :; do
    setsid cttyhack sh -i
    echo "serialgw guest: shell exited ($?), restarting"
done
INIT
    chmod 755 "$root/init"

    find "$root" -exec touch -h -d @0 {} +    # reproducible archive
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
        | cpio --quiet -o -H newc --owner=0:0 --reproducible) \
        | gzip -9 -n > "$work/initrd.img"
    mv -f "$work/initrd.img" "$initrd"
fi

echo "$kernel"
echo "$initrd"

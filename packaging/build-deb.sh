#!/usr/bin/env bash
# Builds kvnc_<version>_<arch>.deb from an already built binary.
#
#   packaging/build-deb.sh TARGET_TRIPLE [OUT_DIR]
#   e.g. packaging/build-deb.sh aarch64-unknown-linux-gnu   (after cargo build --release --target ...)
#
# The package installs /usr/bin/kvnc, a systemd unit and /etc/default/kvnc (its arguments).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:?usage: build-deb.sh TARGET_TRIPLE [OUT_DIR]}"
OUT="${2:-$ROOT/target/deb}"
case "$TARGET" in
    aarch64-unknown-linux-gnu) ARCH=arm64 ;;
    x86_64-unknown-linux-gnu) ARCH=amd64 ;;
    *) echo "no Debian architecture known for $TARGET" >&2; exit 1 ;;
esac
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/kvnc"
[[ -x "$BIN" ]] || { echo "build it first: cargo build --release --target $TARGET ($BIN missing)" >&2; exit 1; }
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
install -D -m 0755 "$BIN" "$STAGE/usr/bin/kvnc"
# Debug info stays in the build tree; the board gets a small binary.
if command -v "${TARGET%%-*}-linux-gnu-strip" >/dev/null 2>&1; then
    "${TARGET%%-*}-linux-gnu-strip" "$STAGE/usr/bin/kvnc"
elif [[ "$ARCH" == amd64 ]]; then
    strip "$STAGE/usr/bin/kvnc"
fi
install -D -m 0644 "$ROOT/packaging/debian/kvnc.service" "$STAGE/lib/systemd/system/kvnc.service"
install -D -m 0644 "$ROOT/packaging/debian/default" "$STAGE/etc/default/kvnc"
install -D -m 0644 "$ROOT/README.md" "$STAGE/usr/share/doc/kvnc/README.md"
mkdir -p "$STAGE/DEBIAN"
echo /etc/default/kvnc >"$STAGE/DEBIAN/conffiles"
# libxkbcommon0: kvnc links it (>= 1.0 for xkb_keymap_key_get_mods_for_level);
# xkb-data: the keyboard layouts it compiles for the target.
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: kvnc
Version: $VERSION
Architecture: $ARCH
Maintainer: kvnc developers <kvnc@localhost>
Depends: libc6 (>= 2.31), libxkbcommon0 (>= 1.0), xkb-data
Section: net
Priority: optional
Installed-Size: $(du -sk "$STAGE/usr" | cut -f1)
Description: VNC server that turns a small Linux board into a KVM over IP
 Serves an HDMI capture device's picture to any VNC viewer (TigerVNC,
 RealVNC, noVNC, vncdotool) and turns the viewers' keyboard and mouse into
 USB HID reports for the target machine. Without hardware it serves a
 built-in demo target.
CONTROL
mkdir -p "$OUT"
DEB="$OUT/kvnc_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"

#!/usr/bin/env bash
# npm run package:deb — builds dist/mailshim_<version>_<arch>.deb with dpkg-deb from this checkout.
# Offline: the production node_modules are the checkout's own, pruned of dev dependencies; the
# native addon (lmdb's prebuilt binary) is the one npm installed for this machine, so the package
# is built per architecture, on that architecture. Man pages are generated from docs/ (go-md2man).
# MAILSHIM_DEB_VERSION overrides the version (the upgrade test builds an "older" package with it).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

need() { command -v "$1" >/dev/null 2>&1 || { echo "package:deb: $1 is missing (apt-get install $2)" >&2; exit 69; }; }
need dpkg-deb dpkg
need go-md2man go-md2man
[ -d node_modules ] || { echo "package:deb: run npm ci first" >&2; exit 69; }

# Reproducible dates: the last commit's time unless SOURCE_DATE_EPOCH says otherwise.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
MAINTAINER=${DEB_MAINTAINER:-mailshim developers <maintainers@mailshim.org>}
VERSION=${MAILSHIM_DEB_VERSION:-$(node -p 'require("./package.json").version')}
ARCH=$(dpkg --print-architecture)
OUT=$REPO/dist
STAGE=$OUT/deb/mailshim_${VERSION}_${ARCH}
LIB=$STAGE/usr/lib/mailshim

npm run --silent build
rm -rf "$STAGE"
mkdir -p "$LIB/dist" "$STAGE/DEBIAN"

# The application: compiled sources (no tests, no source maps), entry points, production modules.
cp -r dist/src "$LIB/dist/src"
find "$LIB/dist" -name '*.map' -delete
cp -r bin package.json package-lock.json "$LIB/"
cp -a node_modules "$LIB/node_modules"
(cd "$LIB" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund >/dev/null)
rm -f "$LIB/package-lock.json" "$LIB/node_modules/.package-lock.json"
# Debris that upstream packages ship and a system package does not need.
# Debris that upstream packages ship and a system package does not need: docs, type declarations,
# build inputs of the native addons (their C sources, node-addon-api headers), other libcs' binaries.
NM=$LIB/node_modules
find "$NM" \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.cts' -o -name '*.map' -o -name '*.html' \
  -o -name '.npmignore' -o -name '.gitattributes' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.github' \
  -o -name '*.musl.node' -o -name 'binding.gyp' -o -name '.husky' \) -prune -exec rm -rf {} +
find "$NM" -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests \) -prune -exec rm -rf {} +
rm -rf "$NM/.bin" "$NM/lmdb/dependencies" "$NM/lmdb/src" "$NM/node-addon-api"
find "$NM" -type d -empty -delete
# Modes: scripts with a #! line stay executable, everything else is a plain file; addons stripped.
find "$NM" -type f -exec chmod 0644 {} +
find "$NM" -type f -exec sh -c 'for f; do [ "$(head -c 2 "$f")" = "#!" ] && chmod 0755 "$f"; done; true' sh {} +
find "$NM" -name '*.node' -exec strip --strip-unneeded {} +

# Commands: symlinks into the application (node resolves the link, so ../dist imports work).
mkdir -p "$STAGE/usr/sbin" "$STAGE/usr/bin"
ln -s ../lib/mailshim/bin/mailshim "$STAGE/usr/sbin/mailshim"
ln -s ../lib/mailshim/bin/sendmail "$STAGE/usr/sbin/sendmail"
ln -s ../sbin/sendmail "$STAGE/usr/lib/sendmail"
ln -s ../lib/mailshim/bin/mailq "$STAGE/usr/bin/mailq"
ln -s ../lib/mailshim/bin/newaliases "$STAGE/usr/bin/newaliases"

# systemd units (ExecStart at the packaged command), sysusers and tmpfiles snippets.
install -d "$STAGE/usr/lib/systemd/system" "$STAGE/usr/lib/sysusers.d" "$STAGE/usr/lib/tmpfiles.d"
sed 's|^ExecStart=.*|ExecStart=/usr/sbin/mailshim serve --config /etc/mailshim/mailshim.toml|' systemd/mailshim.service > "$STAGE/usr/lib/systemd/system/mailshim.service"
install -m 0644 systemd/mailshim.socket "$STAGE/usr/lib/systemd/system/mailshim.socket"
install -m 0644 systemd/mailshim.sysusers.conf "$STAGE/usr/lib/sysusers.d/mailshim.conf"
install -m 0644 packaging/deb/tmpfiles.conf "$STAGE/usr/lib/tmpfiles.d/mailshim.conf"

# The conffile: loopback-only, capture upstream (nothing leaves the host until configured).
install -d -m 0755 "$STAGE/etc/mailshim"
install -d -m 0750 "$STAGE/etc/mailshim/credentials"
sed 's|installed by `mailshim install --systemd`|installed by the mailshim package|' systemd/mailshim.toml.example > "$STAGE/etc/mailshim/mailshim.toml"
chmod 0644 "$STAGE/etc/mailshim/mailshim.toml"

# Documentation and man pages, generated from docs/.
DOC=$STAGE/usr/share/doc/mailshim
install -d "$DOC" "$STAGE/usr/share/man/man8" "$STAGE/usr/share/man/man5"
cp README.md docs/*.md "$DOC/"
gzip -9n "$DOC"/*.md
printf 'mailshim (%s) unstable; urgency=medium\n\n  * Package built from the mailshim repository.\n\n -- %s  %s\n' \
  "$VERSION" "$MAINTAINER" "$(date -R -d "@$EPOCH")" | gzip -9n > "$DOC/changelog.gz"
cat > "$DOC/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mailshim

Files: *
Copyright: 2026 mailshim developers
License: MIT
$(sed -e '1,/^Copyright/d' -e 's/^$/./' -e 's/^/ /' LICENSE)
COPY

# docs/X.md → man body: drop the title and back-link, sections become .SH, links become their text.
man_body() { sed -e '1,/^\[Back to the README\]/d' -e 's/^## /# /' -e 's/\[\([^]]*\)\]([^)]*)/\1/g' "$1"; }
page() { # page SOURCE.md SECTION NAME [doc.md ...]
  local src=$1 section=$2 name=$3; shift 3
  { sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -u -d "@$EPOCH" '+%B %Y')/" "packaging/man/$src"; for d in "$@"; do man_body "$d"; echo; done; } \
    | go-md2man | gzip -9n > "$STAGE/usr/share/man/man$section/$name.$section.gz"
}
page mailshim.8.md 8 mailshim docs/operations.md docs/security.md
page sendmail.8.md 8 sendmail docs/sendmail.md
page mailshim.toml.5.md 5 mailshim.toml docs/configuration.md
ln -s sendmail.8.gz "$STAGE/usr/share/man/man8/mailq.8.gz"
ln -s sendmail.8.gz "$STAGE/usr/share/man/man8/newaliases.8.gz"

# Lintian overrides: what we accept and why (see docs/operations.md, "Debian package").
install -d "$STAGE/usr/share/lintian/overrides"
install -m 0644 packaging/deb/lintian-overrides "$STAGE/usr/share/lintian/overrides/mailshim"

# Control files. The addons' libc floor is read from their symbol versions (dpkg-shlibdeps needs a
# debian/ source tree, which a dpkg-deb build does not have).
libc_floor() { find "$NM" -name '*.node' -exec objdump -T {} + | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1; }
for f in postinst prerm postrm; do install -m 0755 "packaging/deb/$f" "$STAGE/DEBIAN/$f"; done
install -m 0644 packaging/deb/conffiles "$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@MAINTAINER@/$MAINTAINER/" -e "s/@LIBC@/$(libc_floor)/" packaging/deb/control.in > "$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's|  \./|  |') > "$STAGE/DEBIAN/md5sums"

find "$STAGE" -type d -exec chmod 0755 {} +
chmod 0750 "$STAGE/etc/mailshim/credentials"
DEB=$OUT/mailshim_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"

#!/usr/bin/env bash
# Install step of the composite action (action.yml, step `install`).
#
# Picks the release archive for this runner's OS and architecture from the committed manifest
# ($GITHUB_ACTION_PATH/manifest.json), downloads it with curl, verifies its SHA-256 and fails
# closed on a mismatch, then unpacks it into the runner's tool cache
# ($RUNNER_TOOL_CACHE/flow/<version>/<arch>, marked complete with <arch>.complete as
# @actions/tool-cache does) so later jobs on the same runner skip the download.
#
# Outputs: found=true and bin=<path> when installed; found=false when no archive matches (the
# next step then builds from source). Any other failure exits non-zero.
#
# Inputs (env): RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_ACTION_PATH,
# GITHUB_OUTPUT; INPUT_DOWNLOAD_BASE_URL or FLOW_DOWNLOAD_BASE_URL (base URL; the archive is
# <base>/<tag>/<file>); FLOW_ACTION_REPOSITORY (for the default base URL).
set -euo pipefail

out() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }
no_release() {
    echo "::notice title=flow::$1: building from source instead"
    out found false
    exit 0
}
die() {
    echo "::error title=flow install::$1"
    exit 1
}

manifest="$GITHUB_ACTION_PATH/manifest.json"
case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) target=x86_64-unknown-linux-gnu ;;
    Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    Windows/X64) target=x86_64-pc-windows-msvc ;;
    *) no_release "no release archive is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}" ;;
esac
[ -f "$manifest" ] || no_release "no release manifest at $manifest"

# One line: version, tag, file, sha256 of the archive for $target (empty when none).
select_archive() {
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg t "$target" '
            . as $m | ($m.archives // [])[] | select(.target == $t)
            | [$m.version, ($m.tag // ("v" + $m.version)), .file, .sha256] | @tsv' "$manifest" | head -n 1
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$manifest" "$target" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for a in m.get("archives") or []:
    if a.get("target") == sys.argv[2]:
        print("\t".join([m["version"], m.get("tag") or "v" + m["version"], a["file"], a["sha256"]]))
        break
PY
    else
        die "reading $manifest needs jq or python3"
    fi
}
line="$(select_archive)" || die "$manifest is not a valid release manifest"
[ -n "$line" ] || no_release "the manifest has no archive for $target"
IFS=$'\t' read -r version tag file sha256 <<<"$line"
case "$file" in */* | ..* | "") die "manifest entry for $target has an unsafe file name: $file" ;; esac
case "$sha256" in
    [0-9a-f]*) [ "${#sha256}" -eq 64 ] || die "manifest entry for $target: sha256 must be 64 hex digits" ;;
    *) die "manifest entry for $target: sha256 must be 64 hex digits" ;;
esac

exe=flow
[ "$RUNNER_OS" = Windows ] && exe=flow.exe
arch_lower="$(printf '%s' "$RUNNER_ARCH" | tr '[:upper:]' '[:lower:]')"
dir="$RUNNER_TOOL_CACHE/flow/$version/$arch_lower"
if [ -f "$dir.complete" ] && [ -x "$dir/$exe" ]; then
    echo "flow $version found in the tool cache: $dir"
    out found true
    out bin "$dir/$exe"
    exit 0
fi

base="${INPUT_DOWNLOAD_BASE_URL:-${FLOW_DOWNLOAD_BASE_URL:-}}"
if [ -z "$base" ]; then
    [ -n "${FLOW_ACTION_REPOSITORY:-}" ] || no_release "no action repository to download releases from"
    base="https://github.com/$FLOW_ACTION_REPOSITORY/releases/download"
fi
url="${base%/}/$tag/$file"

work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/flow-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "Downloading $url"
curl --fail --silent --show-error --location --retry 3 --proto '=https,http' \
    --output "$work/$file" "$url" || die "downloading $url failed"

if command -v sha256sum >/dev/null 2>&1; then
    actual="$(sha256sum "$work/$file" | cut -d' ' -f1)"
else
    actual="$(shasum -a 256 "$work/$file" | cut -d' ' -f1)"
fi
[ "$actual" = "$sha256" ] ||
    die "SHA-256 mismatch for $file: the manifest says $sha256, the download is $actual; refusing to install it"

mkdir -p "$work/unpacked"
case "$file" in
    *.tar.gz | *.tgz) tar -xzf "$work/$file" -C "$work/unpacked" ;;
    *.zip) unzip -q "$work/$file" -d "$work/unpacked" ;;
    *) die "unknown archive format: $file" ;;
esac
found="$(find "$work/unpacked" -type f -name "$exe" | head -n 1)"
[ -n "$found" ] || die "$file holds no $exe"

rm -rf "$dir" "$dir.complete"
mkdir -p "$dir"
cp "$found" "$dir/$exe"
chmod +x "$dir/$exe"
touch "$dir.complete"
echo "Installed flow $version ($target) to $dir"
out found true
out bin "$dir/$exe"

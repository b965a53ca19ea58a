#!/usr/bin/env bash
# Install step of the composite action (action.yml, step `install`).
#
# Picks the release archive for this runner's OS and architecture from the committed manifest
# ($GITHUB_ACTION_PATH/manifest.json, written by `flow publish package`), downloads it with curl, verifies its SHA-256 and fails
# closed on a mismatch, then unpacks it into the runner's tool cache
# ($RUNNER_TOOL_CACHE/flow/<version>/<arch>, marked complete with <arch>.complete as
# @actions/tool-cache does) so later jobs on the same runner skip the download.
#
# Outputs: found=true and bin=<path> when installed; found=false when no archive matches (the
# next step then builds from source). Any other failure exits non-zero.
#
# Inputs (env): RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_ACTION_PATH,
# GITHUB_OUTPUT; INPUT_DOWNLOAD_BASE_URL or FLOW_DOWNLOAD_BASE_URL (base URL; the archive is
# <base>/v<version>/<asset>); FLOW_ACTION_REPOSITORY (for the default base URL).
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
# Candidate target triples for this runner, preferred first (static musl builds on Linux).
case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) targets="x86_64-unknown-linux-musl x86_64-unknown-linux-gnu" ;;
    Linux/ARM64) targets="aarch64-unknown-linux-musl aarch64-unknown-linux-gnu" ;;
    macOS/X64) targets="x86_64-apple-darwin" ;;
    macOS/ARM64) targets="aarch64-apple-darwin" ;;
    Windows/X64) targets="x86_64-pc-windows-msvc" ;;
    *) no_release "no release archive is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}" ;;
esac
[ -f "$manifest" ] || no_release "no release manifest at $manifest"

# The manifest is flow-publish's: {"version": "1.2.3", "targets": {"<triple>": {"asset": "<file>",
# "sha256": "<hex>"}}}. Prints "version<TAB>asset<TAB>sha256" for target $1, or nothing.
select_archive() {
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg t "$1" '.version as $v | (.targets // {})[$t] // empty
            | [$v, .asset, .sha256] | @tsv' "$manifest"
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$manifest" "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
e = (m.get("targets") or {}).get(sys.argv[2])
if e:
    print("\t".join([m["version"], e["asset"], e["sha256"]]))
PY
    else
        die "reading $manifest needs jq or python3"
    fi
}
line=""
for target in $targets; do
    line="$(select_archive "$target")" || die "$manifest is not a valid release manifest"
    [ -z "$line" ] || break
done
[ -n "$line" ] || no_release "the release manifest has no archive for $targets"
IFS=$'\t' read -r version file sha256 <<<"$line"
tag="v$version"
case "$file" in */* | ..* | "") die "manifest entry for $target has an unsafe file name: $file" ;; esac
case "$version" in *[!0-9A-Za-z.+-]* | "") die "manifest version is not a version: $version" ;; esac
case "$sha256" in
    *[!0-9a-f]*) die "manifest entry for $target: sha256 must be 64 lower-case hex digits" ;;
    *) [ "${#sha256}" -eq 64 ] || die "manifest entry for $target: sha256 must be 64 lower-case hex digits" ;;
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

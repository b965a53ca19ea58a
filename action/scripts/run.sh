#!/usr/bin/env bash
# Run step of the composite action (action.yml, step `run`). The inputs arrive as INPUT_*
# variables through `env:`; flow reads them itself (GITHUB_ACTIONS=true), masks the secret
# ones, writes GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, and exits 1 with ::error:: on failure.
# Keep this bash: dash (sh) drops variables whose names hold a hyphen, like INPUT_API-KEY.
set -euo pipefail
[ -n "${FLOW_BIN:-}" ] || {
    echo "::error title=flow::neither the install nor the fallback step produced a binary"
    exit 1
}
exec "$FLOW_BIN"

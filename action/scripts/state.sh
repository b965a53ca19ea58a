#!/usr/bin/env bash
# State step of the composite action (action.yml, step `state`): decides whether the monitor
# state is a file kept between runs with actions/cache, and under which keys.
#
# Key scheme (documented in the README): one cache entry per run, restored by prefix, so that
# consecutive runs continue where the last one stopped (caches are immutable: a fixed key could
# never be updated):
#   prefix = flow-monitor-state-v1-<repository>-<workflow input>-<branch input>-
#   key    = <prefix><run id>-<run attempt>
# actions/cache restores the newest entry whose key starts with the prefix. Nothing is cached
# when the command is not `monitor`, the `state` input is empty, or it is a redis:// URL.
set -euo pipefail
out="${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
state="${INPUT_STATE:-}"
if [ "${INPUT_COMMAND:-monitor}" != "monitor" ] || [ -z "$state" ]; then
    exit 0
fi
case "$state" in
redis://* | rediss://*) exit 0 ;;
esac
# Keys hold no commas; anything else GitHub accepts, but keep them readable.
slug() { printf '%s' "$1" | tr -c 'A-Za-z0-9._/-' '_'; }
prefix="flow-monitor-state-v1-$(slug "${FLOW_REPOSITORY:-}")-$(slug "${INPUT_WORKFLOW:-all}")-$(slug "${INPUT_BRANCH:-default}")-"
{
    echo "path=$state"
    echo "prefix=$prefix"
    echo "key=${prefix}${FLOW_RUN_ID:-0}-${FLOW_RUN_ATTEMPT:-1}"
} >>"$out"

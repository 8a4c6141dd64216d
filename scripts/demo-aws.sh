#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# demo-aws.sh - `make demo-aws`: the demo's probes under a configuration
# imported from AWS CLI JSON (scripts/aws-sample/: the client subnet's network
# ACL and the client's security group), to test a cloud plan before it is
# deployed. Each sample file is imported on its own, linted, then run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOAT=${MOAT:-$REPO/moat}
TMP=$(mktemp -d /tmp/moat-demo-aws.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

args=()
for json in "$REPO"/scripts/aws-sample/*.json; do
	name=$(basename "$json" .json)
	echo "== moat import aws scripts/aws-sample/$name.json"
	"$MOAT" import aws "$json" >"$TMP/$name.rules"
	grep -v '^#' "$TMP/$name.rules" | sed '/^$/d'
	echo "== moat lint"
	"$MOAT" lint "$TMP/$name.rules" || true
	args+=(--rules "$TMP/$name.rules")
done
exec "$REPO/scripts/demo.sh" "${args[@]}"

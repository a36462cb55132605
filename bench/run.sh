#!/usr/bin/env bash
# run.sh is `make bench`: it makes sure podman is there (the peer measured
# side by side), then runs the Go harness. Arguments go to the harness,
# e.g. `bash bench/run.sh -sizes 256 -runs 1`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --podman
exec go run ./bench "$@"

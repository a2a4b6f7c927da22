#!/usr/bin/env bash
# A stand-in for the `aws` command in the bootstrap sandbox: `aws s3 cp s3://BUCKET/KEY DEST`
# copies $FAKE_S3_ROOT/BUCKET/KEY to DEST, and fails like the real command when the key is
# missing. Every call is appended to $FAKE_S3_ROOT/calls.log.
set -euo pipefail

: "${FAKE_S3_ROOT:?set FAKE_S3_ROOT to the folder that plays S3}"
printf '%s\n' "$*" >> "${FAKE_S3_ROOT}/calls.log"

if [ "${1:-}" != "s3" ] || [ "${2:-}" != "cp" ]; then
  echo "aws stub: only 's3 cp' is supported, got: $*" >&2
  exit 2
fi
shift 2
args=()
for arg in "$@"; do
  case "${arg}" in
    --only-show-errors|--quiet) ;;
    --*) echo "aws stub: unsupported option ${arg}" >&2; exit 2 ;;
    *) args+=("${arg}") ;;
  esac
done
if [ "${#args[@]}" -ne 2 ] || [[ "${args[0]}" != s3://* ]]; then
  echo "aws stub: expected 's3 cp s3://BUCKET/KEY DEST', got: $*" >&2
  exit 2
fi
source_path="${FAKE_S3_ROOT}/${args[0]#s3://}"
if [ ! -f "${source_path}" ]; then
  echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key \"${args[0]#s3://*/}\" does not exist" >&2
  exit 1
fi
cp "${source_path}" "${args[1]}"

#!/usr/bin/env bash
# ctr-lab bootstrap action: runs on every EMR node (as hadoop) before Spark, Livy and JupyterHub
# are installed. It installs the pinned Python dependencies and the ctr_lab wheel for the Python
# that PySpark uses, after checking the wheel's sha256 against the value `ctr-lab emr create`
# put in the cluster request. Running it again changes nothing.
#
# Usage (the arguments `ctr-lab emr create` writes into the bootstrap action):
#   bootstrap.sh --s3 s3://BUCKET/ctr-lab --version 0.1.0 --sha256 HEX --requirements-sha256 HEX
#                [--python /usr/bin/python3] [--max-lifetime-minutes N]
#
# The wheel and the requirements are read from content-addressed keys,
# s3://BUCKET/ctr-lab/sha256/<hex>/<name>, which a later `ctr-lab emr upload` never changes: a
# node that joins hours later (a Spot replacement, a resize) gets the same bytes.
#
# --max-lifetime-minutes N is the cluster's hard spending cap: on the primary node it schedules
# `shutdown -h +N`. When the primary node halts, EMR ends the whole cluster and its billing,
# busy or idle; nothing has to keep running on the student's laptop for this to happen.
#
# Environment overrides (for tests and for running it by hand; none is needed on EMR):
#   CTR_LAB_INSTANCE_JSON  instance info file     (default /mnt/var/lib/info/instance.json)
#   CTR_LAB_AWS            the aws command         (default aws)
#   CTR_LAB_SUDO           prefix for installs     (default sudo; set to "" to install without it)
#   CTR_LAB_PIP_OPTS       extra pip options, e.g. "--no-index --find-links /some/dir"
#   CTR_LAB_REQUIREMENTS   a local requirements file instead of s3://.../requirements-emr.txt
#   CTR_LAB_STATE_DIR      where the installed wheel's sha256 is remembered (default ~/.ctr-lab)
#   CTR_LAB_HOME           the primary node's copy of the notebooks goes to $CTR_LAB_HOME/ctr-lab
#                          (default /home/hadoop)
#   CTR_LAB_SHUTDOWN       the shutdown command    (default shutdown)
set -euo pipefail
set -o errtrace  # the ERR trap below also fires inside functions

readonly INSTANCE_JSON="${CTR_LAB_INSTANCE_JSON:-/mnt/var/lib/info/instance.json}"
readonly AWS="${CTR_LAB_AWS:-aws}"
readonly SUDO="${CTR_LAB_SUDO-sudo}"
readonly PIP_OPTS="${CTR_LAB_PIP_OPTS:-}"
readonly STATE_DIR="${CTR_LAB_STATE_DIR:-${HOME:-/home/hadoop}/.ctr-lab}"
readonly LAB_HOME="${CTR_LAB_HOME:-/home/hadoop}"
readonly SHUTDOWN="${CTR_LAB_SHUTDOWN:-shutdown}"

S3_PREFIX=""
VERSION=""
EXPECTED_SHA256=""
REQUIREMENTS_SHA256=""
MAX_LIFETIME_MINUTES=""
PYTHON="/usr/bin/python3"
STEP="start"

log() {
  printf '%s ctr-lab-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

on_error() {
  local code=$?
  log "ERROR: step '${STEP}' failed (exit ${code}, line ${BASH_LINENO[0]}). The lines above say why."
  exit "${code}"
}
trap on_error ERR

step() {
  STEP="$1"
  log "step: $1"
}

usage() {
  echo "usage: bootstrap.sh --s3 s3://BUCKET/PREFIX --version X.Y.Z --sha256 HEX --requirements-sha256 HEX [--python PATH] [--max-lifetime-minutes N]" >&2
  exit 2
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --s3|--version|--sha256|--requirements-sha256|--python|--max-lifetime-minutes)
      [ "$#" -ge 2 ] || die "$1 needs a value. Fix: see the usage line in bootstrap.sh" ;;
  esac
  case "$1" in
    --s3) S3_PREFIX="${2:-}"; shift 2 ;;
    --version) VERSION="${2:-}"; shift 2 ;;
    --sha256) EXPECTED_SHA256="${2:-}"; shift 2 ;;
    --requirements-sha256) REQUIREMENTS_SHA256="${2:-}"; shift 2 ;;
    --max-lifetime-minutes) MAX_LIFETIME_MINUTES="${2:-}"; shift 2 ;;
    --python) PYTHON="${2:-}"; shift 2 ;;
    -h|--help) usage ;;
    *) log "ERROR: unknown argument '$1'"; usage ;;
  esac
done

[ -n "${S3_PREFIX}" ] || die "--s3 is missing. Fix: pass the folder 'ctr-lab emr upload' wrote, e.g. --s3 s3://my-bucket/ctr-lab"
[[ "${S3_PREFIX}" == s3://* ]] || die "--s3 '${S3_PREFIX}' is not an s3:// URI. Fix: pass e.g. --s3 s3://my-bucket/ctr-lab"
[ -n "${VERSION}" ] || die "--version is missing. Fix: pass the ctr_lab version, e.g. --version 0.1.0"
[[ "${EXPECTED_SHA256}" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 '${EXPECTED_SHA256}' is not 64 lowercase hex digits. Fix: use the value in SHA256SUMS from 'ctr-lab emr package'"
[ -z "${REQUIREMENTS_SHA256}" ] || [[ "${REQUIREMENTS_SHA256}" =~ ^[0-9a-f]{64}$ ]] || die "--requirements-sha256 '${REQUIREMENTS_SHA256}' is not 64 lowercase hex digits. Fix: use the value in SHA256SUMS"
[ -z "${MAX_LIFETIME_MINUTES}" ] || [[ "${MAX_LIFETIME_MINUTES}" =~ ^[1-9][0-9]*$ ]] || die "--max-lifetime-minutes '${MAX_LIFETIME_MINUTES}' is not a positive whole number. Fix: e.g. --max-lifetime-minutes 240"
S3_PREFIX="${S3_PREFIX%/}"
readonly WHEEL="ctr_lab-${VERSION}-py3-none-any.whl"

WORK_DIR="$(mktemp -d)"
readonly WORK_DIR
cleanup() { rm -rf "${WORK_DIR}"; }
trap cleanup EXIT
# A ctr_lab folder in the current directory would shadow the installed package in `python -c`.
cd "${WORK_DIR}"

fetch() {  # fetch s3://... local-path
  if ! "${AWS}" s3 cp --only-show-errors "$1" "$2"; then
    die "could not download $1. Fix: run 'ctr-lab emr upload --bucket ...' and check that the cluster's EC2 role may read it"
  fi
}

verify() {  # verify FILE EXPECTED-SHA256 S3-URI
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "${actual}" != "$2" ]; then
    die "$3 has sha256 ${actual}, expected $2: it is not the file this cluster was created for. Fix: run 'ctr-lab emr upload' and 'ctr-lab emr create' from the same checkout"
  fi
  log "sha256 ok: $(basename "$1") ${actual}"
}

step "check the node"
[ -r "${INSTANCE_JSON}" ] || die "${INSTANCE_JSON} not found: this does not look like an EMR node. Fix: run it as an EMR bootstrap action, or set CTR_LAB_INSTANCE_JSON"
if grep -Eq '"isMaster"[[:space:]]*:[[:space:]]*true' "${INSTANCE_JSON}"; then
  IS_PRIMARY=true
else
  IS_PRIMARY=false
fi
log "primary node: ${IS_PRIMARY}; Python for PySpark: ${PYTHON}; packages from ${S3_PREFIX}"

if [ "${IS_PRIMARY}" = true ] && [ -n "${MAX_LIFETIME_MINUTES}" ]; then
  # First, so that a failure further down cannot leave a cluster without its cap. Running the
  # script again schedules the same halt again (shutdown replaces its pending schedule).
  step "primary node: halt in ${MAX_LIFETIME_MINUTES} minutes (the cluster's maximum lifetime)"
  ${SUDO} "${SHUTDOWN}" -h "+${MAX_LIFETIME_MINUTES}" "ctr-lab: the cluster's maximum lifetime is reached; EMR ends the cluster" >&2 \
    || die "could not schedule the halt with '${SHUTDOWN} -h +${MAX_LIFETIME_MINUTES}'. Fix: check that the hadoop user may run it with sudo"
fi

step "check the Python PySpark will use"
[ -x "${PYTHON}" ] || die "${PYTHON} not found or not executable. Fix: pick a Python the release has (EMR 7: /usr/bin/python3 is 3.9; 7.1+ also has /usr/bin/python3.11) in configurations.json"
"${PYTHON}" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' \
  || die "${PYTHON} is older than Python 3.9, which ctr_lab needs. Fix: use EMR 7 (Python 3.9 or 3.11)"
if ! "${PYTHON}" -m pip --version >/dev/null 2>&1; then
  log "pip is missing for ${PYTHON}; installing $(basename "${PYTHON}")-pip"
  ${SUDO} dnf install -y "$(basename "${PYTHON}")-pip" >&2 \
    || die "could not install pip for ${PYTHON}. Fix: check that the node can reach the Amazon Linux package repositories"
fi

step "install the pinned Python dependencies"
if [ -n "${CTR_LAB_REQUIREMENTS:-}" ]; then
  REQUIREMENTS="${CTR_LAB_REQUIREMENTS}"
  [ -r "${REQUIREMENTS}" ] || die "CTR_LAB_REQUIREMENTS=${REQUIREMENTS} cannot be read. Fix: point it at a requirements file"
else
  [ -n "${REQUIREMENTS_SHA256}" ] || die "--requirements-sha256 is missing. Fix: pass the value in SHA256SUMS (or set CTR_LAB_REQUIREMENTS to a local file)"
  REQUIREMENTS="${WORK_DIR}/requirements-emr.txt"
  REQUIREMENTS_URI="${S3_PREFIX}/sha256/${REQUIREMENTS_SHA256}/requirements-emr.txt"
  fetch "${REQUIREMENTS_URI}" "${REQUIREMENTS}"
  verify "${REQUIREMENTS}" "${REQUIREMENTS_SHA256}" "${REQUIREMENTS_URI}"
fi
# PIP_OPTS holds several words on purpose (e.g. --no-index --find-links DIR).
# shellcheck disable=SC2086
${SUDO} "${PYTHON}" -m pip install --quiet --disable-pip-version-check ${PIP_OPTS} -r "${REQUIREMENTS}" >&2 \
  || die "pip could not install ${REQUIREMENTS} for ${PYTHON}. Fix: read pip's message above; the pins must have wheels for this Python"

step "fetch and verify ${WHEEL}"
readonly WHEEL_URI="${S3_PREFIX}/sha256/${EXPECTED_SHA256}/${WHEEL}"
fetch "${WHEEL_URI}" "${WORK_DIR}/${WHEEL}"
verify "${WORK_DIR}/${WHEEL}" "${EXPECTED_SHA256}" "${WHEEL_URI}"
ACTUAL_SHA256="${EXPECTED_SHA256}"

step "install ctr_lab ${VERSION}"
INSTALLED_SHA256=""
if [ -r "${STATE_DIR}/wheel.sha256" ]; then
  INSTALLED_SHA256="$(cat "${STATE_DIR}/wheel.sha256")"
fi
INSTALLED_VERSION="$("${PYTHON}" -c 'import ctr_lab; print(ctr_lab.__version__)' 2>/dev/null || true)"
if [ "${INSTALLED_SHA256}" = "${ACTUAL_SHA256}" ] && [ "${INSTALLED_VERSION}" = "${VERSION}" ]; then
  log "ctr_lab ${VERSION} with this sha256 is already installed; nothing to do"
else
  # Dependencies come from the pinned requirements above; --force-reinstall replaces a different
  # build of the same version.
  # shellcheck disable=SC2086
  ${SUDO} "${PYTHON}" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
    ${PIP_OPTS} "${WORK_DIR}/${WHEEL}" >&2 \
    || die "pip could not install ${WHEEL} for ${PYTHON}. Fix: read pip's message above"
  mkdir -p "${STATE_DIR}"
  printf '%s\n' "${ACTUAL_SHA256}" > "${STATE_DIR}/wheel.sha256"
fi
FOUND_VERSION="$("${PYTHON}" -c 'import ctr_lab; print(ctr_lab.__version__)')" \
  || die "${PYTHON} cannot import ctr_lab after the install. Fix: read pip's message above"
[ "${FOUND_VERSION}" = "${VERSION}" ] \
  || die "${PYTHON} imports ctr_lab ${FOUND_VERSION}, expected ${VERSION}. Fix: remove the other copy from its sys.path"

if [ "${IS_PRIMARY}" = true ]; then
  step "primary node: notebooks and sparkmagic config into ${LAB_HOME}/ctr-lab"
  fetch "${S3_PREFIX}/notebooks.tar.gz" "${WORK_DIR}/notebooks.tar.gz"
  fetch "${S3_PREFIX}/sparkmagic_config.json" "${WORK_DIR}/sparkmagic_config.json"
  NOTEBOOKS_SHA256="$(sha256sum "${WORK_DIR}/notebooks.tar.gz" | cut -d' ' -f1)"
  DEST="${LAB_HOME}/ctr-lab"
  if [ -d "${DEST}/notebooks" ] && [ -r "${STATE_DIR}/notebooks.sha256" ] \
    && [ "$(cat "${STATE_DIR}/notebooks.sha256")" = "${NOTEBOOKS_SHA256}" ]; then
    log "notebooks already up to date in ${DEST}/notebooks"
  else
    mkdir -p "${DEST}" "${STATE_DIR}"
    rm -rf "${DEST}/notebooks.partial"
    mkdir "${DEST}/notebooks.partial"
    tar -xzf "${WORK_DIR}/notebooks.tar.gz" -C "${DEST}/notebooks.partial" \
      || die "${S3_PREFIX}/notebooks.tar.gz is not a readable tar.gz. Fix: run 'ctr-lab emr upload' again"
    rm -rf "${DEST}/notebooks"
    mv "${DEST}/notebooks.partial" "${DEST}/notebooks"
    printf '%s\n' "${NOTEBOOKS_SHA256}" > "${STATE_DIR}/notebooks.sha256"
  fi
  if ! cmp -s "${WORK_DIR}/sparkmagic_config.json" "${DEST}/sparkmagic_config.json"; then
    cp "${WORK_DIR}/sparkmagic_config.json" "${DEST}/sparkmagic_config.json"
  fi
else
  step "core/task node: no primary-only steps"
fi

STEP="done"
log "done: ctr_lab ${VERSION} ready for ${PYTHON}"

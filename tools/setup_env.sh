#!/usr/bin/env bash
# Create or update a virtual environment for the lab: tools/setup_env.sh VENV EXTRAS
#   VENV    the folder to create (.venv for the lab, .venv-spark4 for the PySpark 4 test environment)
#   EXTRAS  the pyproject extras to install, e.g. "lab,dev" or "spark4,dev"
# Checks what pip cannot install (Java, the Kerberos headers sparkmagic's dependencies compile
# against) first, and stops with one line saying what to install when something is missing.
# As root on Debian/Ubuntu it installs the Kerberos headers, and Chromium with its driver for the
# browser test, itself with apt-get, unless CTR_LAB_NO_SYSTEM_INSTALL=1.
set -euo pipefail

VENV=${1:?usage: tools/setup_env.sh VENV EXTRAS}
EXTRAS=${2:?usage: tools/setup_env.sh VENV EXTRAS}
PYTHON=${PYTHON:-python3}
MIN_PY="3.11"   # IPython 9 and PySpark 4.3 in the lab pins need it; the package itself runs on 3.9

say() { printf 'ctr-lab setup: %s\n' "$*"; }
die() { printf 'ctr-lab setup: %s\n' "$*" >&2; exit 1; }

# --- Python --------------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 \
  || die "no '$PYTHON' on PATH: install Python >= $MIN_PY, or run make with PYTHON=/path/to/python3.11"
"$PYTHON" - "$MIN_PY" <<'PY' || die "$("$PYTHON" -V 2>&1) is too old for the lab environment: install Python >= $MIN_PY and run make with PYTHON=/path/to/it"
import sys
need = tuple(int(p) for p in sys.argv[1].split("."))
sys.exit(0 if sys.version_info[:2] >= need else 1)
PY

# --- Java: Spark 3.5 and 4.x both run on Java 17 and 21 ---------------------------------------------
java_bin=java
[ -n "${JAVA_HOME:-}" ] && java_bin="$JAVA_HOME/bin/java"
command -v "$java_bin" >/dev/null 2>&1 \
  || die "Java not found: install Java 17 (Debian: apt-get install openjdk-17-jre-headless; conda: openjdk=17) and set JAVA_HOME"
java_version=$("$java_bin" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
java_major=${java_version%%.*}
[ "$java_major" = "1" ] && java_major=$(echo "$java_version" | cut -d. -f2)
case "$java_major" in
  17|21) ;;
  *) die "Java $java_version found at $(command -v "$java_bin"), but Spark here needs Java 17 (or 21): install openjdk-17 and point JAVA_HOME at it" ;;
esac

# --- Kerberos headers: sparkmagic -> requests-kerberos -> gssapi, krb5 compile from source -------------
if [[ ",$EXTRAS," == *",lab,"* ]] && ! command -v krb5-config >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && [ "${CTR_LAB_NO_SYSTEM_INSTALL:-0}" != "1" ] \
     && command -v apt-get >/dev/null 2>&1; then
    say "installing libkrb5-dev and gcc (sparkmagic's Kerberos dependencies compile from source)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends libkrb5-dev gcc >/dev/null
  else
    die "sparkmagic's Kerberos dependencies need krb5-config: install libkrb5-dev (Debian/Ubuntu), krb5-devel (Fedora/RHEL) or krb5 (Homebrew, conda-forge), then run make again"
  fi
fi

# --- Chromium and its driver: the browser test (make browser) drives JupyterLab with them ----------
# Installed in the background while pip fills the environment below (neither needs the other; on
# a fresh machine both are downloads), and waited for before the setup says it is done.
chromium_pid=""
chromium_log="${TMPDIR:-/tmp}/ctr-lab-chromium-$$.log"
if [[ ",$EXTRAS," == *",lab,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && [ "${CTR_LAB_NO_SYSTEM_INSTALL:-0}" != "1" ] \
     && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium and chromium-driver (the browser test drives JupyterLab with them), beside pip"
    (
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver
    ) >"$chromium_log" 2>&1 &
    chromium_pid=$!
  else
    say "no chromium: make browser will fail until Chromium is installed (Debian/Ubuntu: chromium chromium-driver)"
  fi
fi

# --- The virtual environment ---------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
say "installing ctr-lab[$EXTRAS] into $VENV (log: $VENV/pip-install.log)"
log="$VENV/pip-install.log"
if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade "pip>=23.2" \
       && "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".[$EXTRAS]"; } >"$log" 2>&1
then
  tail -n 25 "$log" >&2
  die "pip could not install ctr-lab[$EXTRAS] into $VENV: the end of $log is above"
fi
if [ -n "$chromium_pid" ]; then
  if ! wait "$chromium_pid"; then
    tail -n 15 "$chromium_log" >&2
    die "apt-get could not install chromium and chromium-driver: the end of $chromium_log is above"
  fi
  rm -f "$chromium_log"
fi
"$VENV/bin/python" -m pip check >/dev/null || die "pip check found conflicts in $VENV: run '$VENV/bin/pip check' to see them"
say "$VENV ready ($("$VENV/bin/python" -c 'import pyspark; print("PySpark", pyspark.__version__)'), Java $java_version)"

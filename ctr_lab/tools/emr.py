"""``ctr-lab emr``: package, upload, create, estimate, watch, convert and terminate the lab's EMR
cluster.

The cluster is described by data in ``emr_bootstrap/`` (``presets.json``, ``configurations.json``,
``prices.json``, ``throughput.json``); this module turns it into one ``RunJobFlow`` request, checks
that request against botocore's own EMR service model, and sends it only when asked. Uploads are
content-addressed (``sha256/<hex>/<name>``), every cluster carries a hard lifetime cap that its
primary node enforces, and the executor layout comes from :mod:`ctr_lab.emr_layout`. AWS
credentials come from boto3's normal chain (environment, ``~/.aws``, instance role); nothing
secret is read or written here.

Examples
--------
>>> from ctr_lab.tools import emr
>>> request = emr.build_request("quiz", "s3://my-bucket/ctr-lab", "0" * 64)
>>> emr.validate_request(request)
>>> request["AutoTerminationPolicy"]
{'IdleTimeout': 1800}
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ctr_lab.errors import CtrLabError
from ctr_lab.tools.arguments import positive_int

#: The S3 folder the checked-in JSON files name; replaced by the real folder when rendered.
PLACEHOLDER_FOLDER = "s3://YOUR-BUCKET/ctr-lab"
PLACEHOLDER_BUCKET = "YOUR-BUCKET"
#: Folder inside the bucket when ``--bucket`` names only a bucket.
DEFAULT_PREFIX = "ctr-lab"
#: Every cluster the CLI creates carries this tag; ``terminate`` refuses clusters without it.
PROJECT_TAG = ("project", "ctr-lab")
SUMS_NAME = "SHA256SUMS"
#: Livy's own default for ``livy.server.session.timeout``.
LIVY_DEFAULT_TIMEOUT = "1h"
#: Cluster states that cost money.
ACTIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
#: Tag and bootstrap argument that carry the hard cap on the cluster's lifetime.
LIFETIME_TAG = "max-lifetime-hours"
#: Longest lifetime ``--max-hours`` accepts (one week, as EMR's idle timeout).
MAX_LIFETIME_HOURS = 168.0
#: Folder (under the upload folder) of content-addressed objects: ``sha256/<hex>/<name>``.
CONTENT_DIR = "sha256"
#: Files the bootstrap action and the Livy sessions read, each stored under its own sha256.
SUPPORT_FILES = ("bootstrap.sh", "requirements-emr.txt")
#: The first release whose YARN node labels can keep application masters on On-Demand nodes.
LABELS_RELEASE = (7, 2)
_NOTEBOOK_SUFFIXES = (".ipynb", ".md")
_DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_FIXED_MTIME = 315532800  # 1980-01-01, the earliest time a zip entry can carry


# --------------------------------------------------------------------------------------------
# The source checkout and its data files
# --------------------------------------------------------------------------------------------


def source_root() -> Path:
    """The checkout ``ctr_lab`` is imported from, with ``pyproject.toml`` and ``emr_bootstrap/``.

    Raises
    ------
    CtrLabError
        When ``ctr_lab`` is installed from a wheel rather than from a source checkout.
    """
    import ctr_lab

    root = Path(ctr_lab.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or 'name = "ctr-lab"' not in pyproject.read_text():
        raise CtrLabError(
            f"ctr_lab is imported from {root}, which is not a ctr-lab source checkout (no "
            "pyproject.toml for ctr-lab there); `ctr-lab emr` needs the checkout's emr_bootstrap/ "
            "folder. Fix: clone the repository and run `pip install -e .` in it"
        )
    if not (root / "emr_bootstrap").is_dir():
        raise CtrLabError(f"{root / 'emr_bootstrap'} is missing. Fix: restore it from git")
    return root


def emr_dir() -> Path:
    """The ``emr_bootstrap`` folder of the checkout."""
    return source_root() / "emr_bootstrap"


def _read_json(name: str) -> Any:
    path = emr_dir() / name
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise CtrLabError(f"{path} is missing. Fix: restore it from git") from None
    except json.JSONDecodeError as exc:
        raise CtrLabError(
            f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}). Fix: correct the file"
        ) from None


def load_presets() -> Dict[str, Any]:
    """``emr_bootstrap/presets.json``: shared ``defaults`` and the named ``presets``."""
    return _read_json("presets.json")


def preset(name: str) -> Dict[str, Any]:
    """One preset by name, with an error that lists the names that exist."""
    presets = load_presets()["presets"]
    if name not in presets:
        raise CtrLabError(
            f"no preset {name!r} in {emr_dir() / 'presets.json'}. "
            f"Fix: use one of {', '.join(sorted(presets))}"
        )
    return presets[name]


def load_configurations() -> List[Dict[str, Any]]:
    """``emr_bootstrap/configurations.json``: the EMR classifications every preset uses."""
    return _read_json("configurations.json")


def load_prices() -> Dict[str, Any]:
    """``emr_bootstrap/prices.json``: hourly prices per instance type, with date and source."""
    return _read_json("prices.json")


def load_throughput() -> Dict[str, Any]:
    """``emr_bootstrap/throughput.json``: measured throughput and the estimate's assumptions."""
    return _read_json("throughput.json")


def measured_efficiency(speed: Dict[str, Any]) -> float:
    """The lowest fraction of ``local[*]``'s speed the standalone cluster kept in ``speed``'s
    ``distribution`` runs (local seconds / cluster seconds, the same rows and cores).

    Examples
    --------
    >>> runs = [{"local_seconds": 50.0, "cluster_seconds": 100.0},
    ...         {"local_seconds": 60.0, "cluster_seconds": 80.0}]
    >>> measured_efficiency({"distribution": {"runs": runs}})
    0.5
    """
    runs = (speed.get("distribution") or {}).get("runs") or []
    if not runs:
        raise CtrLabError(
            f"{emr_dir() / 'throughput.json'} has no distribution runs. Fix: add the standalone "
            "cluster's runs from BENCHMARKS.md, or give --efficiency"
        )
    return min(r["local_seconds"] / r["cluster_seconds"] for r in runs)


def classification(configs: List[Dict[str, Any]], name: str) -> Dict[str, Any]:
    """The classification called ``name`` in a Configurations list."""
    for item in configs:
        if item.get("Classification") == name:
            return item
    raise CtrLabError(
        f"{emr_dir() / 'configurations.json'} has no {name!r} classification. Fix: add it"
    )


def pyspark_python(configs: List[Dict[str, Any]]) -> str:
    """The ``PYSPARK_PYTHON`` that ``spark-env`` and ``livy-env`` set (they must agree).

    The bootstrap action installs the packages for this interpreter, so a notebook session (Livy)
    and a ``spark-submit`` job (spark-env) import the same ``ctr_lab``.
    """
    found = {}
    for name in ("spark-env", "livy-env"):
        exports = [
            c
            for c in classification(configs, name).get("Configurations", [])
            if c.get("Classification") == "export"
        ]
        found[name] = exports[0]["Properties"].get("PYSPARK_PYTHON") if exports else None
    if not found["spark-env"] or found["spark-env"] != found["livy-env"]:
        raise CtrLabError(
            f"{emr_dir() / 'configurations.json'}: PYSPARK_PYTHON is {found['spark-env']!r} in "
            f"spark-env but {found['livy-env']!r} in livy-env. Fix: set the same interpreter "
            "(e.g. /usr/bin/python3 or /usr/bin/python3.11) in both export sections"
        )
    return str(found["spark-env"])


def duration_seconds(text: str) -> int:
    """Seconds in a Livy/Spark duration such as ``3h``, ``90m``, ``45s`` or ``1d``."""
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|min|h|d)?\s*", text)
    if not match:
        raise CtrLabError(f"{text!r} is not a duration. Fix: write it like 3h, 90m or 45s")
    value, unit = int(match.group(1)), match.group(2) or "ms"
    factor = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit]
    return int(value * factor)


# --------------------------------------------------------------------------------------------
# package: wheel + pyFiles zip + SHA256SUMS
# --------------------------------------------------------------------------------------------


def default_dist_dir() -> Path:
    """``build/dist`` in the checkout: where ``package`` writes and ``create`` reads."""
    return source_root() / "build" / "dist"


def _copy_sources(root: Path, dest: Path) -> None:
    """Copy what the wheel is built from, with fixed permissions, so builds are reproducible."""
    names = ["pyproject.toml", "README.md"]
    for name in names:
        shutil.copyfile(root / name, dest / name)
    for path in sorted((root / "ctr_lab").rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)


def build_wheel(out_dir: Path) -> Path:
    """Build ``ctr_lab-<version>-py3-none-any.whl`` from the checkout into ``out_dir``.

    The sources are copied to a temporary folder first (the checkout gets no ``build/`` or
    ``*.egg-info`` litter) and ``SOURCE_DATE_EPOCH`` is fixed, so the same sources give the same
    bytes and the same sha256.
    """
    import ctr_lab

    root = source_root()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"ctr_lab-{ctr_lab.__version__}-py3-none-any.whl"
    with tempfile.TemporaryDirectory(prefix="ctr-lab-wheel-") as tmp:
        src = Path(tmp) / "src"
        built = Path(tmp) / "out"
        src.mkdir()
        _copy_sources(root, src)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(_FIXED_MTIME), PYTHONDONTWRITEBYTECODE="1")
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(built)]
        result = subprocess.run(
            [*command, str(src)], env=env, capture_output=True, text=True, check=False
        )
        made = sorted(built.glob("ctr_lab-*.whl")) if built.is_dir() else []
        if result.returncode != 0 or len(made) != 1:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise CtrLabError(
                f"building the wheel from {root} failed (pip wheel exit {result.returncode}: "
                f"{tail}). Fix: run `python -m pip wheel --no-deps -w build/dist .` in the "
                "checkout to see the whole message"
            )
        partial = wheel.with_name(wheel.name + ".partial")
        shutil.copyfile(made[0], partial)
        os.replace(partial, wheel)
    return wheel


#: Notebooks kept off the cluster: students work from the starter, not the worked solution.
_NOT_SHIPPED = ("assignment/solution.ipynb",)


def build_notebooks_archive(out_dir: Path) -> Path:
    """``notebooks.tar.gz``: the course notebooks (not the worked solution), byte-identical for
    identical notebooks."""
    root = source_root()
    target = out_dir / "notebooks.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = root / "notebooks"
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            rel = path.relative_to(folder)
            if not path.is_file() or path.suffix not in _NOTEBOOK_SUFFIXES:
                continue
            if any(part.startswith(".") for part in rel.parts) or rel.as_posix() in _NOT_SHIPPED:
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mtime, info.mode = len(data), _FIXED_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    os.replace(partial, target)
    return target


def read_sums(text: str) -> Dict[str, str]:
    """Parse ``sha256sum``-style lines (``<hex>  <name>``) into ``{name: hex}``."""
    sums = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].lstrip("*")] = parts[0]
    return sums


def build_package(out_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Write the wheel, the pyFiles zip, ``notebooks.tar.gz`` and ``SHA256SUMS`` into ``out_dir``.

    Returns
    -------
    dict
        ``{"dir": Path, "files": {name: Path}, "sha256": {name: hex}}``.
    """
    from ctr_lab.tools.bundle import build_zip, sha256_of

    out = Path(out_dir) if out_dir else default_dist_dir()
    out.mkdir(parents=True, exist_ok=True)
    files = [build_wheel(out), build_zip(out), build_notebooks_archive(out)]
    sums = {path.name: sha256_of(path) for path in files}
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    partial = out / (SUMS_NAME + ".partial")
    partial.write_text(text)
    os.replace(partial, out / SUMS_NAME)
    return {"dir": out, "files": {p.name: p for p in files}, "sha256": sums}


def wheel_name() -> str:
    """The file name of this version's wheel."""
    import ctr_lab

    return f"ctr_lab-{ctr_lab.__version__}-py3-none-any.whl"


def zip_name() -> str:
    """The file name of this version's pyFiles zip."""
    import ctr_lab

    return f"ctr_lab-{ctr_lab.__version__}.zip"


# --------------------------------------------------------------------------------------------
# S3 folders and rendering the checked-in files for one folder
# --------------------------------------------------------------------------------------------


def s3_folder(uri: str) -> str:
    """Normalise ``--bucket``: ``s3://b`` → ``s3://b/ctr-lab``; ``s3://b/x/`` → ``s3://b/x``."""
    bucket, prefix = split_s3(uri)
    return f"s3://{bucket}/{prefix}"


def require_bucket(uri: str) -> str:
    """:func:`s3_folder` of ``--bucket``, refused when it is the placeholder: no bucket given.

    Examples
    --------
    >>> require_bucket("s3://my-lab-bucket")
    's3://my-lab-bucket/ctr-lab'
    >>> require_bucket(PLACEHOLDER_FOLDER)
    Traceback (most recent call last):
    ...
    ctr_lab.errors.CtrLabError: no S3 bucket was given: --bucket is the placeholder ...
    """
    folder = s3_folder(uri)
    if split_s3(folder)[0] == PLACEHOLDER_BUCKET:
        raise CtrLabError(
            f"no S3 bucket was given: --bucket is the placeholder {folder}, its default when "
            "$CTR_LAB_BUCKET is unset. Fix: pass --bucket s3://<your bucket> (or export "
            "CTR_LAB_BUCKET=s3://<your bucket>)"
        )
    return folder


def split_s3(uri: str) -> Tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")`` (prefix defaults to ctr-lab)."""
    uri = uri.strip()
    if uri.rstrip("/") in (PLACEHOLDER_FOLDER, PLACEHOLDER_FOLDER.rsplit("/", 1)[0]):
        return PLACEHOLDER_BUCKET, DEFAULT_PREFIX  # allowed for --dry-run only
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?", uri)
    if not match:
        raise CtrLabError(
            f"{uri!r} is not an S3 bucket URI. Fix: write it like s3://my-bucket or "
            "s3://my-bucket/ctr-lab (bucket names are lowercase)"
        )
    prefix = (match.group(2) or "").strip("/") or DEFAULT_PREFIX
    return match.group(1), prefix


def render(obj: Any, folder: str) -> Any:
    """A deep copy of ``obj`` with the placeholder folder replaced by ``folder`` in every string
    (and a value that is just the placeholder bucket, such as ``jupyter-s3-conf``'s, by its
    bucket)."""
    if isinstance(obj, str):
        if obj == PLACEHOLDER_BUCKET:
            return split_s3(folder)[0]
        return obj.replace(PLACEHOLDER_FOLDER, folder)
    if isinstance(obj, list):
        return [render(item, folder) for item in obj]
    if isinstance(obj, dict):
        return {key: render(value, folder) for key, value in obj.items()}
    return obj


def content_key(prefix: str, name: str, sha256: str) -> str:
    """The key of a content-addressed object: ``<prefix>/sha256/<hex>/<name>``.

    A new upload of changed bytes lands under a new key, so an object a running cluster's
    bootstrap action (or its Livy sessions) reads never changes under it.
    """
    return f"{prefix}/{CONTENT_DIR}/{sha256}/{name}"


def support_sums() -> Dict[str, str]:
    """sha256 of ``bootstrap.sh`` and ``requirements-emr.txt`` in the checkout."""
    from ctr_lab.tools.bundle import sha256_of

    return {name: sha256_of(emr_dir() / name) for name in SUPPORT_FILES}


def convert_script() -> Path:
    """The one-time gzip-to-Parquet script ``convert`` runs on the cluster."""
    return Path(__file__).resolve().parent / "emr_convert.py"


def _replace(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [_replace(item, old, new) for item in obj]
    if isinstance(obj, dict):
        return {key: _replace(value, old, new) for key, value in obj.items()}
    return obj


def pin_zip(obj: Any, folder: str, zip_sha256: str) -> Any:
    """``obj`` with the pyFiles zip's path replaced by its content-addressed path."""
    bucket, prefix = split_s3(folder)
    pinned = f"s3://{bucket}/{content_key(prefix, zip_name(), zip_sha256)}"
    return _replace(obj, f"{folder}/{zip_name()}", pinned)


def release_version(label: str) -> Tuple[int, int]:
    """``emr-7.12.0`` -> ``(7, 12)``."""
    match = re.fullmatch(r"emr-(\d+)\.(\d+)\.\d+", label)
    if not match:
        raise CtrLabError(f"{label!r} is not an EMR release label. Fix: write it like emr-7.12.0")
    return int(match.group(1)), int(match.group(2))


def lifetime_hours(preset_name: str, max_hours: Optional[float] = None) -> float:
    """The hard cap on a cluster's lifetime: ``--max-hours`` or the preset's default."""
    hours = float(max_hours if max_hours is not None else preset(preset_name)["max_lifetime_hours"])
    if not 0.25 <= hours <= MAX_LIFETIME_HOURS:
        raise CtrLabError(
            f"--max-hours {hours:g} is outside 0.25 to {MAX_LIFETIME_HOURS:g}. Fix: e.g. "
            "--max-hours 4 (the cluster halts that long after it starts)"
        )
    return hours


def sparkmagic_template() -> Dict[str, Any]:
    """``emr_bootstrap/sparkmagic_config.json``: the ``~/.sparkmagic/config.json`` template."""
    return _read_json("sparkmagic_config.json")


def cluster_configurations(preset_name: str, folder: str) -> List[Dict[str, Any]]:
    """The Configurations of one preset: ``configurations.json`` plus the preset's Spark sizes."""
    configs = render(load_configurations(), folder)
    extra = render(preset(preset_name).get("spark_defaults", {}), folder)
    classification(configs, "spark-defaults")["Properties"].update(extra)
    return configs


# --------------------------------------------------------------------------------------------
# The RunJobFlow request
# --------------------------------------------------------------------------------------------


def build_request(
    preset_name: str,
    folder: str,
    wheel_sha256: str,
    *,
    name: Optional[str] = None,
    key_name: Optional[str] = None,
    subnet_id: Optional[str] = None,
    sums: Optional[Dict[str, str]] = None,
    max_hours: Optional[float] = None,
) -> Dict[str, Any]:
    """The ``RunJobFlow`` parameters for a preset whose files ``upload`` put in ``folder``.

    Parameters
    ----------
    preset_name
        A key of ``presets.json`` (``quiz``, ``assignment``).
    folder
        The S3 folder of the uploaded files, e.g. ``s3://my-bucket/ctr-lab``.
    wheel_sha256
        The sha256 the bootstrap action checks the wheel against.
    name, key_name, subnet_id
        Cluster name (default ``ctr-lab-<preset>``), EC2 key pair for the SSH tunnel, VPC subnet.
    sums
        sha256 of the uploaded files by name (``SHA256SUMS``); the bootstrap script, the
        requirements and the pyFiles zip are named by these content-addressed keys. Missing
        entries are computed from the checkout.
    max_hours
        Hard cap on the cluster's lifetime (default: the preset's ``max_lifetime_hours``): the
        bootstrap action schedules the primary node's halt, which ends the cluster.
    """
    import ctr_lab

    if not re.fullmatch(r"[0-9a-f]{64}", wheel_sha256):
        raise CtrLabError(f"{wheel_sha256!r} is not a sha256. Fix: run `ctr-lab emr package`")
    folder = s3_folder(folder)
    bucket, prefix = split_s3(folder)
    defaults = load_presets()["defaults"]
    chosen = preset(preset_name)
    hours = lifetime_hours(preset_name, max_hours)
    known = {**support_sums(), **(sums or {})}
    zip_sha = known.get(zip_name()) or current_zip_sha256()
    configs = pin_zip(cluster_configurations(preset_name, folder), folder, zip_sha)
    labels = next((c for c in configs if c.get("Classification") == "yarn-site"), None)
    if labels and release_version(defaults["release_label"]) < LABELS_RELEASE:
        raise CtrLabError(
            f"{emr_dir() / 'presets.json'}: release {defaults['release_label']} cannot keep "
            "application masters on On-Demand nodes (node labels by market need emr-7.2.0 or "
            "later). Fix: use emr-7.2.0 or later"
        )
    groups = []
    for role in ("MASTER", "CORE", "TASK"):
        spec = chosen["instance_groups"].get(role)
        if not spec:
            continue
        itype = spec["instance_type"]
        group: Dict[str, Any] = {
            "Name": f"{role.lower()} ({itype})",
            "Market": spec["market"],
            "InstanceRole": role,
            "InstanceType": itype,
            "InstanceCount": int(spec["count"]),
            "EbsConfiguration": {
                "EbsBlockDeviceConfigs": [
                    {
                        "VolumeSpecification": {
                            "VolumeType": "gp3",
                            "SizeInGB": int(spec["ebs_gb"]),
                        },
                        "VolumesPerInstance": 1,
                    }
                ],
                "EbsOptimized": True,
            },
        }
        if spec["market"] == "SPOT":
            # EMR's cap for Spot: never pay more than the on-demand price of this region (the
            # API accepts the word OnDemandPrice in place of a dollar amount).
            group["BidPrice"] = "OnDemandPrice"
        groups.append(group)
    instances: Dict[str, Any] = {
        "InstanceGroups": groups,
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if key_name:
        instances["Ec2KeyName"] = key_name
    if subnet_id:
        instances["Ec2SubnetId"] = subnet_id
    script_key = content_key(prefix, "bootstrap.sh", known["bootstrap.sh"])
    return {
        "Name": name or f"ctr-lab-{preset_name}",
        "LogUri": f"s3://{bucket}/{prefix}/logs/",
        "ReleaseLabel": defaults["release_label"],
        "Applications": [{"Name": app} for app in defaults["applications"]],
        "Instances": instances,
        "BootstrapActions": [
            {
                "Name": "ctr-lab packages",
                "ScriptBootstrapAction": {
                    "Path": f"s3://{bucket}/{script_key}",
                    "Args": [
                        "--s3",
                        folder,
                        "--version",
                        ctr_lab.__version__,
                        "--sha256",
                        wheel_sha256,
                        "--requirements-sha256",
                        known["requirements-emr.txt"],
                        "--python",
                        pyspark_python(configs),
                        "--max-lifetime-minutes",
                        str(round(hours * 60)),
                    ],
                },
            }
        ],
        "Configurations": configs,
        "ServiceRole": defaults["service_role"],
        "JobFlowRole": defaults["instance_profile"],
        "VisibleToAllUsers": True,
        "EbsRootVolumeSize": int(defaults["ebs_root_volume_size_gb"]),
        "ScaleDownBehavior": defaults["scale_down_behavior"],
        "AutoTerminationPolicy": {"IdleTimeout": int(chosen["idle_timeout_seconds"])},
        "Tags": [
            {"Key": PROJECT_TAG[0], "Value": PROJECT_TAG[1]},
            {"Key": "preset", "Value": preset_name},
            {"Key": LIFETIME_TAG, "Value": f"{hours:g}"},
        ],
    }


def validate_request(params: Dict[str, Any], operation: str = "RunJobFlow") -> None:
    """Check ``params`` against botocore's EMR service model; no client, no network.

    Raises
    ------
    CtrLabError
        With botocore's own report, when a parameter is missing, unknown or of the wrong type.
    """
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("emr")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        text = " ".join(report.generate_report().split())
        raise CtrLabError(f"the {operation} request is invalid: {text}")


def create_cluster_command(request: Dict[str, Any], region: Optional[str] = None) -> str:
    """The ``aws emr create-cluster`` command that sends the same request."""

    def js(value: Any) -> str:
        return shlex.quote(json.dumps(value, separators=(",", ":")))

    inst = request["Instances"]
    groups = []
    for group in inst["InstanceGroups"]:
        # The CLI's instance-group keys: a BidPrice makes the group Spot.
        item = {
            "Name": group["Name"],
            "InstanceGroupType": group["InstanceRole"],
            "InstanceType": group["InstanceType"],
            "InstanceCount": group["InstanceCount"],
        }
        if group["Market"] == "SPOT":
            item["BidPrice"] = group["BidPrice"]
        if "EbsConfiguration" in group:
            item["EbsConfiguration"] = group["EbsConfiguration"]
        groups.append(item)
    ec2 = {"InstanceProfile": request["JobFlowRole"]}
    if "Ec2KeyName" in inst:
        ec2["KeyName"] = inst["Ec2KeyName"]
    if "Ec2SubnetId" in inst:
        ec2["SubnetId"] = inst["Ec2SubnetId"]
    actions = [
        {
            "Name": a["Name"],
            "Path": a["ScriptBootstrapAction"]["Path"],
            "Args": a["ScriptBootstrapAction"]["Args"],
        }
        for a in request["BootstrapActions"]
    ]
    lines = ["aws emr create-cluster"]
    if region:
        lines.append(f"--region {shlex.quote(region)}")
    lines += [
        f"--name {shlex.quote(request['Name'])}",
        f"--release-label {shlex.quote(request['ReleaseLabel'])}",
        "--applications " + " ".join(f"Name={a['Name']}" for a in request["Applications"]),
        f"--instance-groups {js(groups)}",
        f"--configurations {js(request['Configurations'])}",
        f"--bootstrap-actions {js(actions)}",
        f"--auto-termination-policy IdleTimeout={request['AutoTerminationPolicy']['IdleTimeout']}",
        f"--log-uri {shlex.quote(request['LogUri'])}",
        f"--service-role {shlex.quote(request['ServiceRole'])}",
        f"--ec2-attributes {js(ec2)}",
        f"--ebs-root-volume-size {request['EbsRootVolumeSize']}",
        f"--scale-down-behavior {request['ScaleDownBehavior']}",
        "--tags " + " ".join(shlex.quote(f"{t['Key']}={t['Value']}") for t in request["Tags"]),
        "--visible-to-all-users",
    ]
    return " \\\n  ".join(lines)


# --------------------------------------------------------------------------------------------
# estimate
# --------------------------------------------------------------------------------------------


def estimate(
    preset_name: str,
    rows: Optional[int] = None,
    efficiency: Optional[float] = None,
    max_hours: Optional[float] = None,
) -> Dict[str, Any]:
    """Cost per hour of a preset, and time and cost of one run over ``rows`` rows.

    Prices come from ``prices.json`` (Spot task nodes at the on-demand price, their cap: an upper
    bound). Time comes from one measurement named in ``throughput.json`` (per-stage seconds of
    ``ctr-lab bench`` on 2 cores, from BENCHMARKS.md), scaled linearly in rows and spread over
    the executor cores the YARN memory layout gives (:mod:`ctr_lab.emr_layout`) at
    ``efficiency``, by default the one the standalone cluster kept (:func:`measured_efficiency`).
    The one-time gzip conversion is not spread: one task reads a gzip.
    """
    from ctr_lab.tools import emr_layout

    chosen = preset(preset_name)
    prices = load_prices()
    speed = load_throughput()
    assume = dict(speed["assumptions"])
    if efficiency is not None:
        if not 0 < efficiency <= 1:
            raise CtrLabError(f"--efficiency {efficiency} must be in (0, 1]. Fix: e.g. 0.6")
        assume["parallel_efficiency"] = efficiency
    else:
        assume["parallel_efficiency"] = measured_efficiency(speed)
    hours_cap = lifetime_hours(preset_name, max_hours)
    rows = int(rows if rows is not None else chosen["planned_rows"])
    gb_hour = prices["ebs_gp3_per_gb_month"] / prices["hours_per_month"]
    groups = []
    ec2 = emr_fee = ebs = 0.0
    root_gb = load_presets()["defaults"]["ebs_root_volume_size_gb"]
    for role in ("MASTER", "CORE", "TASK"):
        spec = chosen["instance_groups"].get(role)
        if not spec:
            continue
        itype, count = spec["instance_type"], int(spec["count"])
        if itype not in prices["instances"]:
            raise CtrLabError(
                f"{itype} (preset {preset_name}, {role}) has no price in "
                f"{emr_dir() / 'prices.json'}. Fix: add it with its date and source"
            )
        price = prices["instances"][itype]
        ec2 += count * price["ec2_on_demand"]
        emr_fee += count * price["emr"]
        ebs += count * (int(spec["ebs_gb"]) + root_gb) * gb_hour
        groups.append({"role": role, "type": itype, "count": count, "market": spec["market"]})
    per_hour = ec2 + emr_fee + ebs
    plan = emr_layout.layout(chosen, prices)
    measured = speed["measurement"]
    # The measured rows ran on `cores` local cores; the cluster runs them on the layout's
    # executor cores at the assumed efficiency.
    speedup = plan["executor_cores"] * assume["parallel_efficiency"] / speed["cores"]
    scale = rows / measured["rows"]
    seconds = {"start": assume["cluster_start_minutes"] * 60.0}
    for stage, value in speed["stages"].items():
        seconds[stage] = value["seconds"] * scale / speedup
    seconds["idle_before_termination"] = float(chosen["idle_timeout_seconds"])
    conv = speed.get("convert", {})
    convert_seconds = (
        rows * conv["seconds"] / conv["rows"] if conv.get("rows") and conv.get("seconds") else None
    )
    billed_hours = min(sum(seconds.values()) / 3600, hours_cap)
    livy_timeout = classification(load_configurations(), "livy-conf")["Properties"].get(
        "livy.server.session.timeout", LIVY_DEFAULT_TIMEOUT
    )
    forgotten_hours = (duration_seconds(livy_timeout) + chosen["idle_timeout_seconds"]) / 3600
    return {
        "preset": preset_name,
        "rows": rows,
        "groups": groups,
        "region": prices["region"],
        "price_date": prices["date"],
        "per_hour": {"ec2": ec2, "emr": emr_fee, "ebs": ebs, "total": per_hour},
        "layout": plan,
        "executor_cores": plan["executor_cores"],
        "measurement": measured,
        "seconds": seconds,
        "convert_seconds": convert_seconds,
        "convert_measurement": conv,
        "billed_hours": billed_hours,
        "run_cost": billed_hours * per_hour,
        "forgotten_session_hours": min(forgotten_hours, hours_cap),
        "forgotten_session_cost": min(forgotten_hours, hours_cap) * per_hour,
        "livy_session_timeout": livy_timeout,
        "max_lifetime_hours": hours_cap,
        "max_lifetime_cost": hours_cap * per_hour,
        "assumptions": assume,
        "efficiency_measured": efficiency is None,
        "distribution": speed.get("distribution") or {},
        "sources": {"prices": prices["source"], "throughput": measured["what"]},
    }


def format_estimate(est: Dict[str, Any]) -> str:
    """The estimate as the text ``ctr-lab emr estimate`` prints."""
    from ctr_lab.tools import emr_layout

    hour = est["per_hour"]
    secs = est["seconds"]
    nodes = ", ".join(
        f"{g['count']}x {g['type']} {g['role'].lower()}"
        + (" (Spot)" if g["market"] == "SPOT" else "")
        for g in est["groups"]
    )
    assume = est["assumptions"]
    measured = est["measurement"]

    def minutes(value: float) -> str:
        return f"{value / 60:6.1f} min"

    stage_names = {
        "load": "load (CSV to DataFrame)",
        "featurize": "featurize",
        "fit": "fit (recommended)",
        "score": "score",
    }
    lines = [
        f"preset {est['preset']}: {nodes}",
        f"price per hour: ${hour['total']:.2f} (EC2 ${hour['ec2']:.3f} + EMR ${hour['emr']:.3f}"
        f" + EBS ${hour['ebs']:.3f}), {est['region']}, prices of {est['price_date']}",
        f"executors: {emr_layout.describe(est['layout'])}",
        f"hard cap: the cluster halts {est['max_lifetime_hours']:g} h after it starts "
        f"(--max-hours): at most ${est['max_lifetime_cost']:.2f} per cluster",
        f"planned run over {est['rows']:,} rows:",
        f"  cluster start            {minutes(secs['start'])}  (assumption)",
    ]
    for stage, label in stage_names.items():
        if stage in secs:
            lines.append(f"  {label:<24} {minutes(secs[stage])}")
    lines += [
        f"  idle until auto-stop     {minutes(secs['idle_before_termination'])}",
        f"  billed                   {est['billed_hours']:6.2f} h    -> ${est['run_cost']:.2f}",
    ]
    if est["convert_seconds"] is not None:
        conv = est["convert_measurement"]
        lines.append(
            f"once, before the first run: train.gz to Parquet {minutes(est['convert_seconds'])} "
            f"(one task reads a gzip, whatever the cluster; measured {conv['rows']:,} rows in "
            f"{conv['seconds']:.1f} s on {conv['date']}: `{conv['command']}`)"
        )
    lines += [
        f"a notebook left open: Livy ends an idle session after {est['livy_session_timeout']}, "
        f"then the cluster stops after its idle timeout: up to "
        f"{est['forgotten_session_hours']:.1f} h more, ${est['forgotten_session_cost']:.2f}",
        "assumptions:",
        "  - prices: emr_bootstrap/prices.json; Spot task nodes at the on-demand price (their "
        "cap, an upper bound); EMR fees unconfirmed: check https://aws.amazon.com/emr/pricing/",
        f"  - time from one measurement: {measured['what']}, {measured['date']}, "
        f"{measured['machine']}: `{measured['command']}`",
        f"  - spread over {est['executor_cores']} executor cores at "
        f"{assume['parallel_efficiency']:.0%} efficiency ({efficiency_source(est)}; "
        "--efficiency changes it)",
        "  - time grows linearly with rows; one fit, no tuning grid (a grid of k settings "
        "multiplies the fit time by about k)",
    ]
    return "\n".join(lines)


def efficiency_source(est: Dict[str, Any]) -> str:
    """Where the estimate's parallel efficiency comes from, as ``format_estimate`` says it."""
    if not est["efficiency_measured"]:
        return "given with --efficiency"
    dist = est["distribution"]
    kept = ", ".join(
        f"{r['local_seconds'] / r['cluster_seconds']:.0%} at {r['rows']:,} rows"
        for r in dist["runs"]
    )
    return (
        f"the lowest the standalone cluster kept of local[*]'s speed on 2 cores: {kept}, "
        f"{dist['date']}, BENCHMARKS.md; there three JVMs shared the cores and no network "
        "joined them"
    )


#: The preset the notebooks' cost lines are about: the one that fits the full data.
COST_LINE_PRESET = "assignment"


def fit_cost_line(fits: int, preset_name: str = COST_LINE_PRESET) -> str:
    """The line the notebooks show before a cell that fits models: its time and cost on EMR.

    One fit is the estimate's featurize, fit and score stages for the preset's planned rows
    (the data already loaded), at the preset's price per hour; ``fits`` is how many the cell
    runs. ``tests/test_notebooks.py`` checks that each notebook shows the line this returns, so
    a new measurement in BENCHMARKS.md or a new price shows where the notebooks must follow.

    Examples
    --------
    >>> line = fit_cost_line(3)
    >>> line.startswith("**On EMR**") and "the cell below fits 3 models" in line
    True
    """
    est = estimate(preset_name)
    one = sum(est["seconds"][stage] for stage in ("featurize", "fit", "score"))
    hour = est["per_hour"]["total"]
    models = "one model" if fits == 1 else f"{fits} models"
    each = "" if fits == 1 else " each"
    # USD, not a dollar sign: JupyterLab typesets the text between two dollar signs of a
    # paragraph as LaTeX, "\$" included (tests/lab_markdown_math.py has its rule).
    return (
        f"**On EMR** (`{preset_name}` preset, all {est['rows']:,} rows, USD {hour:.2f} an hour), "
        f"the cell below fits {models}: about {one / 60:.1f} min and USD {one / 3600 * hour:.2f}"
        f"{each} (`ctr-lab emr estimate --preset {preset_name}`, from the measured speed of "
        "`recommended`). A model already saved in `MODEL_DIR` reloads instead."
    )


# --------------------------------------------------------------------------------------------
# AWS calls (boto3, normal credential chain)
# --------------------------------------------------------------------------------------------


def _client(service: str, region: Optional[str]):
    import boto3

    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise CtrLabError(
            "no AWS region configured. Fix: pass --region us-east-1 or set AWS_DEFAULT_REGION"
        )
    return session.client(service)


def _aws_error(exc: Exception, doing: str) -> CtrLabError:
    """One line for a boto3/botocore failure."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return CtrLabError(
            f"{doing}: no AWS credentials found. Fix: run `aws configure` or set AWS_PROFILE"
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return CtrLabError(f"{doing}: {err.get('Code', '?')}: {err.get('Message', exc)}")
    return CtrLabError(f"{doing}: {exc}")


def upload_plan(folder: str, package: Dict[str, Any], with_data: bool = True) -> List[Tuple]:
    """``(local path or bytes, s3 key)`` pairs that ``upload`` sends, ``SHA256SUMS`` last.

    What a running cluster reads after it started (the wheel and requirements a node added
    later installs, the bootstrap script, the pyFiles zip a new Livy session fetches, the
    conversion script) goes under content-addressed keys (:func:`content_key`), so a later
    upload adds objects and never changes those. ``SHA256SUMS`` (the newest upload's sums) is
    what ``create`` reads to name them.
    """
    from ctr_lab.tools.bundle import sha256_of

    root = source_root()
    _, prefix = split_s3(folder)
    files = package["files"]
    sums = dict(package["sha256"])
    plan: List[Tuple[Any, str]] = []
    for name in sorted(files):
        if name in (wheel_name(), zip_name()):
            plan.append((files[name], content_key(prefix, name, sums[name])))
        else:
            plan.append((files[name], f"{prefix}/{name}"))
    for name, digest in support_sums().items():
        sums[name] = digest
        plan.append((emr_dir() / name, content_key(prefix, name, digest)))
    script = convert_script()
    sums[script.name] = sha256_of(script)
    plan.append((script, content_key(prefix, script.name, sums[script.name])))
    zip_sha = sums[zip_name()]
    rendered = {
        "configurations.json": pin_zip(render(load_configurations(), folder), folder, zip_sha),
        "sparkmagic_config.json": pin_zip(render(sparkmagic_template(), folder), folder, zip_sha),
    }
    for name, obj in rendered.items():
        plan.append(((json.dumps(obj, indent=2) + "\n").encode(), f"{prefix}/{name}"))
    if with_data:
        for path in sorted((root / "data_samples").glob("*")):
            if path.is_file() and path.name.endswith(_DATA_SUFFIXES):
                plan.append((path, f"{prefix}/data/{path.name}"))
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    plan.append((text.encode(), f"{prefix}/{SUMS_NAME}"))
    return plan


def upload(
    folder: str,
    region: Optional[str] = None,
    with_data: bool = True,
    s3=None,
    dist_dir: Optional[Path] = None,
) -> List[str]:
    """Package and upload everything a cluster needs into ``folder``; return the s3:// URIs.

    The package is built in ``dist_dir`` (default ``build/dist`` in the checkout); a caller that
    may run beside another upload from the same checkout gives each its own folder.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    folder = s3_folder(folder)
    bucket, _ = split_s3(folder)
    s3 = s3 or _client("s3", region)
    try:
        s3.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(
            exc, f"s3://{bucket} is not a bucket you can write to (create it first)"
        ) from None
    package = build_package(dist_dir)
    uris = []
    for source, key in upload_plan(folder, package, with_data):
        try:
            if isinstance(source, bytes):
                s3.put_object(Bucket=bucket, Key=key, Body=source)
            else:
                s3.upload_file(str(source), bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise _aws_error(exc, f"uploading to s3://{bucket}/{key}") from None
        uris.append(f"s3://{bucket}/{key}")
    return uris


def required_keys(prefix: str, sums: Dict[str, str]) -> List[str]:
    """Keys the bootstrap action and the notebooks need, relative to the bucket.

    ``sums`` is the uploaded ``SHA256SUMS``: it names the content-addressed objects.
    """
    keys = [f"{prefix}/{name}" for name in ("notebooks.tar.gz", "sparkmagic_config.json")]
    for name in (*SUPPORT_FILES, wheel_name(), zip_name()):
        keys.append(content_key(prefix, name, sums[name]))
    return keys


def uploaded_sums(folder: str, s3) -> Dict[str, str]:
    """Read ``folder``'s ``SHA256SUMS``, check every object it names is there, return it."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(folder)
    fix = f"Fix: run `ctr-lab emr upload --bucket {folder}`"
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{SUMS_NAME}")["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise CtrLabError(
                f"the file(s) the cluster needs are not in {folder} (no {SUMS_NAME}). {fix}"
            ) from None
        raise _aws_error(exc, f"reading s3://{bucket}/{prefix}/{SUMS_NAME}") from None
    except BotoCoreError as exc:
        raise _aws_error(exc, f"reading s3://{bucket}/{prefix}/{SUMS_NAME}") from None
    sums = read_sums(body.decode())
    absent = [n for n in (*SUPPORT_FILES, wheel_name(), zip_name()) if n not in sums]
    if absent:
        raise CtrLabError(f"{folder}/{SUMS_NAME} does not list {', '.join(absent)}. {fix}")
    missing = []
    for key in required_keys(prefix, sums):
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                missing.append(f"s3://{bucket}/{key}")
            else:
                raise _aws_error(exc, f"checking s3://{bucket}/{key}") from None
        except BotoCoreError as exc:
            raise _aws_error(exc, f"checking s3://{bucket}/{key}") from None
    if missing:
        raise CtrLabError(
            f"{len(missing)} file(s) the cluster needs are not in {folder}, first "
            f"{missing[0]}. {fix}"
        )
    return sums


def current_zip_sha256() -> str:
    """The sha256 of the pyFiles zip of the code imported now (fast: no wheel build)."""
    from ctr_lab.tools.bundle import build_zip, sha256_of

    with tempfile.TemporaryDirectory(prefix="ctr-lab-zip-") as tmp:
        return sha256_of(build_zip(tmp))


def local_wheel_sha256(build_if_missing: bool = True) -> Tuple[str, Path]:
    """The wheel's sha256 from ``build/dist/SHA256SUMS`` (built first when missing).

    Prints a note on stderr when that build is older than the sources (its pyFiles zip differs
    from one made now).
    """
    sums_path = default_dist_dir() / SUMS_NAME
    sums = read_sums(sums_path.read_text()) if sums_path.is_file() else {}
    if wheel_name() not in sums:
        if not build_if_missing:
            raise CtrLabError(f"{sums_path} is missing. Fix: run `ctr-lab emr package`")
        print(f"building the package to learn the wheel's sha256: {sums_path}", file=sys.stderr)
        sums = build_package()["sha256"]
    elif sums.get(zip_name()) != current_zip_sha256():
        print(
            f"note: {sums_path} was built from other sources than the checkout's; "
            "`ctr-lab emr package` (or `upload`) refreshes it",
            file=sys.stderr,
        )
    return sums[wheel_name()], sums_path


def create(
    preset_name: str,
    folder: str,
    region: Optional[str] = None,
    *,
    emr=None,
    s3=None,
    **options: Any,
) -> Tuple[str, Dict[str, Any]]:
    """Check the uploaded files, then send RunJobFlow; return the cluster id and the request."""
    from botocore.exceptions import BotoCoreError, ClientError

    folder = require_bucket(folder)
    s3 = s3 or _client("s3", region)
    sums = uploaded_sums(folder, s3)
    sha = sums[wheel_name()]
    if sums.get(zip_name()) != current_zip_sha256():
        raise CtrLabError(
            f"the ctr_lab build in {folder} was made from other sources than this checkout "
            f"({zip_name()} differs). Fix: run `ctr-lab emr upload --bucket {folder}` so the "
            "cluster runs this checkout's code"
        )
    request = build_request(preset_name, folder, sha, sums=sums, **options)
    validate_request(request)
    emr = emr or _client("emr", region)
    try:
        response = emr.run_job_flow(**request)
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, "RunJobFlow") from None
    return response["JobFlowId"], request


def _tags(cluster: Dict[str, Any]) -> Dict[str, str]:
    return {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}


def cluster_status(cluster_id: str, emr) -> Dict[str, Any]:
    """State, primary node address, idle timeout and tags of one cluster."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, f"describing cluster {cluster_id}") from None
    idle: Optional[int] = None
    try:
        policy = emr.get_auto_termination_policy(ClusterId=cluster_id)
        idle = policy.get("AutoTerminationPolicy", {}).get("IdleTimeout")
    except (BotoCoreError, ClientError, NotImplementedError):
        idle = None
    status = cluster.get("Status", {})
    tags = _tags(cluster)
    created = status.get("Timeline", {}).get("CreationDateTime")
    lifetime = float(tags[LIFETIME_TAG]) if LIFETIME_TAG in tags else None
    halts_by = None
    if created is not None and lifetime is not None:
        import datetime

        halts_by = created + datetime.timedelta(hours=lifetime)
    return {
        "id": cluster["Id"],
        "name": cluster.get("Name"),
        "state": status.get("State"),
        "reason": status.get("StateChangeReason", {}).get("Message", ""),
        "primary_dns": cluster.get("MasterPublicDnsName"),
        "release": cluster.get("ReleaseLabel"),
        "normalized_instance_hours": cluster.get("NormalizedInstanceHours"),
        "idle_timeout_seconds": idle,
        "max_lifetime_hours": lifetime,
        "created": created,
        "halts_by": halts_by,
        "tags": tags,
    }


#: Livy session states that hold YARN resources (Livy's SessionState: the others are final).
LIVY_OPEN_STATES = ("not_started", "starting", "idle", "busy", "shutting_down", "recovering")


def open_steps(cluster_id: str, emr) -> List[Dict[str, str]]:
    """The cluster's pending and running steps (ListSteps): each keeps it from being idle."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = emr.get_paginator("list_steps").paginate(
            ClusterId=cluster_id, StepStates=["PENDING", "RUNNING"]
        )
        steps = [s for page in pages for s in page.get("Steps", [])]
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, f"listing the steps of {cluster_id}") from None
    return [
        {"id": s["Id"], "name": s.get("Name", ""), "state": s["Status"]["State"]} for s in steps
    ]


def livy_sessions(livy_url: str, timeout: float = 5.0) -> List[Dict[str, Any]]:
    """Open Livy sessions from ``GET <livy_url>/sessions`` (through the SSH tunnel).

    Livy's REST API (``SessionServlet``) answers ``{"from", "total", "sessions": [...]}``; a
    session in a state of :data:`LIVY_OPEN_STATES` holds its driver's YARN container and keeps
    the cluster from being idle.
    """
    import urllib.error
    import urllib.request

    url = livy_url.rstrip("/") + "/sessions?size=1000"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CtrLabError(
            f"cannot read {url} ({exc}). Fix: open the tunnel first: {tunnel_hint(None, port=8998)}"
        ) from None
    return [
        {"id": s.get("id"), "kind": s.get("kind"), "state": s.get("state"), "app": s.get("appId")}
        for s in body.get("sessions", [])
        if s.get("state") in LIVY_OPEN_STATES
    ]


def active_clusters(emr) -> List[Dict[str, Any]]:
    """Clusters in a billed state that carry the ``project=ctr-lab`` tag."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = emr.get_paginator("list_clusters").paginate(ClusterStates=ACTIVE_STATES)
        ids = [c["Id"] for page in pages for c in page.get("Clusters", [])]
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, "listing clusters") from None
    found = [cluster_status(cid, emr) for cid in ids]
    return [c for c in found if c["tags"].get(PROJECT_TAG[0]) == PROJECT_TAG[1]]


def terminate(cluster_id: str, emr, force: bool = False) -> str:
    """Terminate a ctr-lab cluster; return what happened, in words."""
    from botocore.exceptions import BotoCoreError, ClientError

    info = cluster_status(cluster_id, emr)
    if info["state"] in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
        return f"{cluster_id} is already {info['state']}"
    if info["tags"].get(PROJECT_TAG[0]) != PROJECT_TAG[1] and not force:
        raise CtrLabError(
            f"{cluster_id} ({info['name']}) has no tag {PROJECT_TAG[0]}={PROJECT_TAG[1]}: it was "
            "not created by `ctr-lab emr create`. Fix: check the id, or add --force"
        )
    try:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, f"terminating {cluster_id}") from None
    return f"{cluster_id} ({info['name']}) is terminating; billing stops when it is TERMINATED"


def tunnel_hint(primary_dns: Optional[str], port: int = 9443) -> str:
    """The SSH tunnel command to JupyterHub (9443) or Livy (8998) on the primary node."""
    host = primary_dns or "<primary-node-public-dns>"
    return f"ssh -i ~/.ssh/YOUR-KEY.pem -N -L {port}:localhost:{port} hadoop@{host}"


def convert_request(
    cluster_id: str,
    folder: str,
    source: Optional[str] = None,
    target: Optional[str] = None,
    partitions: Optional[int] = None,
) -> Dict[str, Any]:
    """The ``AddJobFlowSteps`` request that converts ``train.gz`` to Parquet on the cluster.

    One step: ``spark-submit --deploy-mode cluster`` of ``emr_convert.py`` as ``upload`` stored
    it (content-addressed), so its driver runs on an On-Demand node like a Livy session's.
    """
    from ctr_lab.tools import emr_convert
    from ctr_lab.tools.bundle import sha256_of

    folder = require_bucket(folder)
    bucket, prefix = split_s3(folder)
    script = convert_script()
    script_uri = f"s3://{bucket}/{content_key(prefix, script.name, sha256_of(script))}"
    source = source or f"{folder}/data/avazu/train.gz"
    target = target or f"{folder}/data/avazu/train_parquet"
    for uri in (source, target):
        split_s3(uri)
    args = ["spark-submit", "--deploy-mode", "cluster", script_uri, source, target]
    args += ["--partitions", str(int(partitions or emr_convert.DEFAULT_PARTITIONS))]
    return {
        "JobFlowId": cluster_id,
        "Steps": [
            {
                "Name": "ctr-lab: convert train.gz to Parquet",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
            }
        ],
    }


def add_steps_command(request: Dict[str, Any], region: Optional[str] = None) -> str:
    """The ``aws emr add-steps`` command that sends the same request."""
    steps = [
        {
            "Type": "CUSTOM_JAR",
            "Name": step["Name"],
            "ActionOnFailure": step["ActionOnFailure"],
            "Jar": step["HadoopJarStep"]["Jar"],
            "Args": step["HadoopJarStep"]["Args"],
        }
        for step in request["Steps"]
    ]
    words = ["aws", "emr", "add-steps"]
    if region:
        words += ["--region", region]
    words += ["--cluster-id", request["JobFlowId"], "--steps", json.dumps(steps)]
    return " ".join(shlex.quote(w) for w in words)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _default_bucket() -> str:
    return os.environ.get("CTR_LAB_BUCKET", PLACEHOLDER_FOLDER)


def _cmd_package(args: argparse.Namespace) -> int:
    made = build_package(Path(args.out) if args.out else None)
    for name, path in made["files"].items():
        print(f"{made['sha256'][name]}  {path}")
    print(f"sha256 sums: {made['dir'] / SUMS_NAME}")
    return 0


def _cmd_upload(args: argparse.Namespace) -> int:
    folder = s3_folder(args.bucket)
    uris = upload(folder, args.region, with_data=not args.no_data)
    for uri in uris:
        print(f"uploaded {uri}")
    print(f"next: ctr-lab emr create --preset quiz --bucket {folder}")
    return 0


def _cmd_create(args: argparse.Namespace) -> int:
    options = {
        "name": args.name,
        "key_name": args.key_name,
        "subnet_id": args.subnet_id,
        "max_hours": args.max_hours,
    }
    folder = s3_folder(args.bucket)
    if args.json and not args.dry_run:
        raise CtrLabError("--json only goes with --dry-run. Fix: add --dry-run")
    preset(args.preset)  # an unknown preset fails before anything is built or checked
    if args.dry_run:
        sha, source = local_wheel_sha256()
        request = build_request(args.preset, folder, sha, **options)
        validate_request(request)
        if args.json:
            print(json.dumps(request, indent=2))
            return 0
        print(f"# RunJobFlow request (valid for botocore's EMR model; wheel sha256 from {source})")
        print(json.dumps(request, indent=2))
        print("\n# the same request with the AWS CLI")
        print(create_cluster_command(request, args.region))
        return 0
    cluster_id, request = create(args.preset, folder, args.region, **options)
    idle = request["AutoTerminationPolicy"]["IdleTimeout"]
    cap = next(t["Value"] for t in request["Tags"] if t["Key"] == LIFETIME_TAG)
    print(
        f"created {cluster_id} ({request['Name']}); it stops by itself after {idle} s idle, "
        f"and halts {cap} h after it starts whatever it is doing"
    )
    print(f"watch it:     ctr-lab emr status {cluster_id}")
    print(f"stop it:      ctr-lab emr terminate {cluster_id}")
    if not args.key_name:
        print("no --key-name: use EMR Studio, or create with an EC2 key pair for the SSH tunnel")
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    est = estimate(args.preset, args.rows, args.efficiency, args.max_hours)
    print(json.dumps(est, indent=2) if args.json else format_estimate(est))
    return 0


def _activity(cluster: Dict[str, Any], emr, livy_url: Optional[str]) -> Dict[str, Any]:
    """What keeps one running cluster from being idle: open steps and Livy sessions."""
    found: Dict[str, Any] = {"steps": open_steps(cluster["id"], emr), "livy_sessions": None}
    if livy_url:
        found["livy_sessions"] = livy_sessions(livy_url)
    return found


def _cmd_status(args: argparse.Namespace) -> int:
    emr = _client("emr", args.region)
    found = [cluster_status(args.cluster_id, emr)] if args.cluster_id else active_clusters(emr)
    for c in found:
        if c["state"] in ACTIVE_STATES and c["state"] != "TERMINATING":
            c["activity"] = _activity(c, emr, args.livy_url)
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    if not found:
        print("no active ctr-lab clusters (nothing is billing)")
        return 0
    for c in found:
        idle = f"{c['idle_timeout_seconds']} s" if c["idle_timeout_seconds"] else "unknown"
        print(f"{c['id']}  {c['state']:<13} {c['name']}  idle timeout {idle}")
        if c["max_lifetime_hours"] is not None:
            when = f"{c['halts_by']:%Y-%m-%d %H:%M %Z}".strip() if c["halts_by"] else "unknown"
            print(
                f"  hard cap: halts {c['max_lifetime_hours']:g} h after it started, "
                f"about {when} (plus the minutes its bootstrap took)"
            )
        else:
            print("  hard cap: none (not created by this version of `ctr-lab emr create`)")
        if c["reason"]:
            print(f"  reason: {c['reason']}")
        activity = c.get("activity")
        if activity:
            steps = activity["steps"]
            print(
                f"  keeping it busy: {len(steps)} step(s) pending or running"
                + "".join(f"; {s['id']} {s['state']} {s['name']}" for s in steps)
            )
            sessions = activity["livy_sessions"]
            if sessions is None:
                print(
                    "  Livy sessions: not checked (add --livy-url http://localhost:8998 with "
                    f"the tunnel `{tunnel_hint(c['primary_dns'], port=8998)}`)"
                )
            else:
                print(
                    f"  Livy sessions open: {len(sessions)}"
                    + "".join(f"; #{x['id']} {x['state']}" for x in sessions)
                )
            print(
                "  also not idle: an attached EMR Studio workspace, an open notebook kernel, "
                "HDFS above 10 % used (emr_bootstrap/README.md, 'What keeps a cluster alive')"
            )
        if c["state"] in ("RUNNING", "WAITING"):
            print(f"  tunnel: {tunnel_hint(c['primary_dns'])}  then https://localhost:9443")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    cluster_id = args.cluster_id or "j-XXXXXXXXXXXXX"
    request = convert_request(cluster_id, args.bucket, args.source, args.target, args.partitions)
    validate_request(request, "AddJobFlowSteps")
    if args.dry_run:
        print("# AddJobFlowSteps request (valid for botocore's EMR model)")
        print(json.dumps(request, indent=2))
        print("\n# the same request with the AWS CLI")
        print(add_steps_command(request, args.region))
        return 0
    if not args.cluster_id:
        raise CtrLabError("--cluster-id is missing. Fix: pass the id `ctr-lab emr status` shows")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        step = _client("emr", args.region).add_job_flow_steps(**request)["StepIds"][0]
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(exc, "AddJobFlowSteps") from None
    target = request["Steps"][0]["HadoopJarStep"]["Args"][5]
    print(f"added step {step} to {cluster_id}: writes {target}")
    print(f"watch it: ctr-lab emr status {cluster_id}; then load {target} in the notebooks")
    return 0


def _cmd_terminate(args: argparse.Namespace) -> int:
    print(terminate(args.cluster_id, _client("emr", args.region), force=args.force))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ctr-lab emr`` and its subcommands."""
    emr = sub.add_parser(
        "emr",
        help="package, upload, create, estimate, watch, convert and terminate the lab's EMR "
        "cluster",
        description="The lab's Amazon EMR cluster, from the files in emr_bootstrap/. AWS "
        "credentials come from boto3's usual chain (environment, ~/.aws, instance role). "
        "Full guide: emr_bootstrap/README.md.",
    )
    cmds = emr.add_subparsers(dest="emr_command", metavar="SUBCOMMAND")
    cmds.required = True
    bucket_help = (
        "S3 folder for the lab's files: s3://BUCKET or s3://BUCKET/PREFIX (default prefix "
        "ctr-lab; default $CTR_LAB_BUCKET)"
    )

    p = cmds.add_parser(
        "package",
        help="build the wheel, the pyFiles zip, notebooks.tar.gz and SHA256SUMS",
        description="Build ctr_lab's wheel (for the bootstrap action), the pyFiles zip (for "
        "Livy sessions), notebooks.tar.gz and SHA256SUMS, from this source checkout.",
    )
    p.add_argument("--out", help="output folder (default build/dist in the checkout)")
    p.set_defaults(func=_cmd_package)

    p = cmds.add_parser(
        "upload",
        help="package, then upload it, the bootstrap script, configs and sample data to S3",
        description="Package, then upload the wheel, zip, notebooks, bootstrap.sh, "
        "requirements-emr.txt, configurations.json, sparkmagic_config.json and data_samples/ "
        "to the S3 folder; SHA256SUMS goes last.",
    )
    p.add_argument("--bucket", required=True, help=bucket_help)
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--no-data", action="store_true", help="skip data_samples/")
    p.set_defaults(func=_cmd_upload)

    p = cmds.add_parser(
        "create",
        help="create a cluster from a preset (--dry-run: print the request, send nothing to AWS)",
        description="Build the RunJobFlow request for a preset, validate it against botocore's "
        "EMR model and send it. Without --dry-run it first checks that the uploaded files are in "
        "S3 and uses the wheel sha256 listed there.",
    )
    p.add_argument("--preset", required=True, help="a preset of emr_bootstrap/presets.json")
    p.add_argument("--bucket", default=_default_bucket(), help=bucket_help)
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--name", help="cluster name (default ctr-lab-PRESET)")
    p.add_argument("--key-name", help="EC2 key pair for the SSH tunnel to the primary node")
    p.add_argument("--subnet-id", help="VPC subnet (default: the account's default VPC)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request JSON and the equivalent aws emr create-cluster command",
    )
    p.add_argument(
        "--max-hours",
        type=float,
        help="hard cap: the cluster halts this many hours after it starts, busy or not "
        "(default: the preset's max_lifetime_hours)",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: only the request JSON")
    p.set_defaults(func=_cmd_create)

    p = cmds.add_parser(
        "estimate",
        help="cost per hour and for a planned run, with the assumptions",
        description="Cost per hour of a preset (prices.json) and time and cost of one run "
        "(throughput measured in BENCHMARKS.md, scaled to the cluster's cores).",
    )
    p.add_argument("--preset", required=True, help="a preset of emr_bootstrap/presets.json")
    p.add_argument("--rows", type=positive_int, help="rows in the run (default: the preset's)")
    p.add_argument(
        "--efficiency",
        type=float,
        help="parallel efficiency in (0, 1] (default: the lowest the standalone cluster kept, "
        "emr_bootstrap/throughput.json)",
    )
    p.add_argument("--max-hours", type=float, help="the lifetime cap (default: the preset's)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=_cmd_estimate)

    p = cmds.add_parser(
        "status",
        help="state of one cluster, or of every active ctr-lab cluster",
        description="Without CLUSTER_ID: every ctr-lab cluster that is billing now.",
    )
    p.add_argument("cluster_id", nargs="?", help="j-XXXXXXXXXXXXX")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument(
        "--livy-url",
        help="also list open Livy sessions, e.g. http://localhost:8998 through an SSH tunnel",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_status)

    p = cmds.add_parser(
        "convert",
        help="add a step that converts train.gz to Parquet once (gzip is read by one task)",
        description="Add an EMR step that runs ctr_lab/tools/emr_convert.py with spark-submit on "
        "the cluster: the gzip CSV is read once and written as Parquet part files, which every "
        "later read spreads over all cores.",
    )
    p.add_argument("--bucket", default=_default_bucket(), help=bucket_help)
    p.add_argument("--cluster-id", help="j-XXXXXXXXXXXXX (not needed with --dry-run)")
    p.add_argument("--source", help="default: BUCKET/PREFIX/data/avazu/train.gz")
    p.add_argument("--target", help="default: BUCKET/PREFIX/data/avazu/train_parquet")
    p.add_argument("--partitions", type=positive_int, help="Parquet part files (default 96)")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    p.set_defaults(func=_cmd_convert)

    p = cmds.add_parser(
        "terminate",
        help="terminate a ctr-lab cluster",
        description="Terminate a cluster created by `ctr-lab emr create` (tag project=ctr-lab).",
    )
    p.add_argument("cluster_id", help="j-XXXXXXXXXXXXX")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--force", action="store_true", help="also a cluster without the ctr-lab tag")
    p.set_defaults(func=_cmd_terminate)

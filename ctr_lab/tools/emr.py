"""``ctr-lab emr``: package, upload, create, estimate, watch and terminate the lab's EMR cluster.

The cluster is described by data in ``emr_bootstrap/`` (``presets.json``, ``configurations.json``,
``prices.json``, ``throughput.json``); this module turns it into one ``RunJobFlow`` request, checks
that request against botocore's own EMR service model, and sends it only when asked. AWS
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
    """A deep copy of ``obj`` with the placeholder folder replaced by ``folder`` in every string."""
    if isinstance(obj, str):
        return obj.replace(PLACEHOLDER_FOLDER, folder)
    if isinstance(obj, list):
        return [render(item, folder) for item in obj]
    if isinstance(obj, dict):
        return {key: render(value, folder) for key, value in obj.items()}
    return obj


def sparkmagic_template() -> Dict[str, Any]:
    """``emr_bootstrap/sparkmagic_config.json``: the ``~/.sparkmagic/config.json`` template."""
    return _read_json("sparkmagic_config.json")


def cluster_configurations(preset_name: str, folder: str) -> List[Dict[str, Any]]:
    """The Configurations of one preset: ``configurations.json`` plus the preset's Spark sizes."""
    configs = render(load_configurations(), folder)
    extra = preset(preset_name).get("spark_defaults", {})
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
    """
    import ctr_lab

    if not re.fullmatch(r"[0-9a-f]{64}", wheel_sha256):
        raise CtrLabError(f"{wheel_sha256!r} is not a sha256. Fix: run `ctr-lab emr package`")
    folder = s3_folder(folder)
    defaults = load_presets()["defaults"]
    chosen = preset(preset_name)
    prices = load_prices()["instances"]
    configs = cluster_configurations(preset_name, folder)
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
            if itype not in prices:
                raise CtrLabError(
                    f"{itype} has no price in {emr_dir() / 'prices.json'}, so its Spot price "
                    "cap is unknown. Fix: add it to prices.json"
                )
            # Cap Spot at the on-demand price: never pay more than on-demand.
            group["BidPrice"] = f"{prices[itype]['ec2_on_demand']:.3f}"
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
    bucket, prefix = split_s3(folder)
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
                    "Path": f"{folder}/bootstrap.sh",
                    "Args": [
                        "--s3",
                        folder,
                        "--version",
                        ctr_lab.__version__,
                        "--sha256",
                        wheel_sha256,
                        "--python",
                        pyspark_python(configs),
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
    preset_name: str, rows: Optional[int] = None, efficiency: Optional[float] = None
) -> Dict[str, Any]:
    """Cost per hour of a preset, and time and cost of one run over ``rows`` rows.

    Prices come from ``prices.json`` (Spot task nodes at the on-demand price, an upper bound);
    time from the throughput measured on 2 cores (``throughput.json``, from BENCHMARKS.md)
    spread over the executor cores at ``parallel_efficiency``.
    """
    chosen = preset(preset_name)
    prices = load_prices()
    speed = load_throughput()
    assume = dict(speed["assumptions"])
    if efficiency is not None:
        if not 0 < efficiency <= 1:
            raise CtrLabError(f"--efficiency {efficiency} must be in (0, 1]. Fix: e.g. 0.6")
        assume["parallel_efficiency"] = efficiency
    rows = int(rows if rows is not None else chosen["planned_rows"])
    gb_hour = prices["ebs_gp3_per_gb_month"] / prices["hours_per_month"]
    groups = []
    ec2 = emr_fee = ebs = 0.0
    executor_vcpu = 0
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
        if role != "MASTER":
            executor_vcpu += count * int(price["vcpu"])
        groups.append({"role": role, "type": itype, "count": count, "market": spec["market"]})
    per_hour = ec2 + emr_fee + ebs
    cores = max(executor_vcpu - int(assume["driver_cores"]), 1)
    per_core = {}
    for stage in ("load", "fit"):
        measured = speed[stage]
        per_core[stage] = measured["rows"] / measured["seconds"] / speed["cores"]
    rate = cores * assume["parallel_efficiency"]
    seconds = {
        "start": assume["cluster_start_minutes"] * 60.0,
        "load": rows / (per_core["load"] * rate),
        "fit": rows / (per_core["fit"] * rate),
        "idle_before_termination": float(chosen["idle_timeout_seconds"]),
    }
    billed_hours = sum(seconds.values()) / 3600
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
        "executor_cores": cores,
        "rows_per_core_second": per_core,
        "seconds": seconds,
        "billed_hours": billed_hours,
        "run_cost": billed_hours * per_hour,
        "forgotten_session_hours": forgotten_hours,
        "forgotten_session_cost": forgotten_hours * per_hour,
        "livy_session_timeout": livy_timeout,
        "assumptions": assume,
        "sources": {"prices": prices["source"], "throughput": speed["source"]},
    }


def format_estimate(est: Dict[str, Any]) -> str:
    """The estimate as the text ``ctr-lab emr estimate`` prints."""
    hour = est["per_hour"]
    secs = est["seconds"]
    nodes = ", ".join(
        f"{g['count']}x {g['type']} {g['role'].lower()}"
        + (" (Spot)" if g["market"] == "SPOT" else "")
        for g in est["groups"]
    )
    assume = est["assumptions"]
    per_core = est["rows_per_core_second"]

    def minutes(value: float) -> str:
        return f"{value / 60:6.1f} min"

    lines = [
        f"preset {est['preset']}: {nodes}",
        f"price per hour: ${hour['total']:.2f} (EC2 ${hour['ec2']:.3f} + EMR ${hour['emr']:.3f}"
        f" + EBS ${hour['ebs']:.3f}), {est['region']}, prices of {est['price_date']}",
        f"planned run over {est['rows']:,} rows:",
        f"  cluster start            {minutes(secs['start'])}  (assumption)",
        f"  load (CSV to DataFrame)  {minutes(secs['load'])}",
        f"  fit (recommended)        {minutes(secs['fit'])}",
        f"  idle until auto-stop     {minutes(secs['idle_before_termination'])}",
        f"  billed                   {est['billed_hours']:6.2f} h    -> ${est['run_cost']:.2f}",
        f"a notebook left open: Livy ends an idle session after {est['livy_session_timeout']}, "
        f"then the cluster stops after its idle timeout: up to "
        f"{est['forgotten_session_hours']:.1f} h more, ${est['forgotten_session_cost']:.2f}",
        "assumptions:",
        "  - prices: emr_bootstrap/prices.json; Spot task nodes at the on-demand price (their "
        "cap, an upper bound); EMR fees unconfirmed: check https://aws.amazon.com/emr/pricing/",
        f"  - throughput on 2 cores (BENCHMARKS.md): load {per_core['load']:,.0f} and fit "
        f"{per_core['fit']:,.0f} rows per core-second",
        f"  - spread over {est['executor_cores']} executor cores (core + task vCPUs, minus "
        f"{assume['driver_cores']} for the driver) at {assume['parallel_efficiency']:.0%} "
        f"efficiency (not measured; --efficiency changes it)",
        "  - time grows linearly with rows; one fit, no tuning grid (a grid of k settings "
        "multiplies the fit time by about k)",
    ]
    return "\n".join(lines)


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
    """``(local path or bytes, s3 key)`` pairs that ``upload`` sends, wheel before SHA256SUMS."""
    root = source_root()
    _, prefix = split_s3(folder)
    files = package["files"]
    plan: List[Tuple[Any, str]] = [(files[name], f"{prefix}/{name}") for name in sorted(files)]
    plan.append((emr_dir() / "bootstrap.sh", f"{prefix}/bootstrap.sh"))
    plan.append((emr_dir() / "requirements-emr.txt", f"{prefix}/requirements-emr.txt"))
    rendered = {
        "configurations.json": render(load_configurations(), folder),
        "sparkmagic_config.json": render(sparkmagic_template(), folder),
    }
    for name, obj in rendered.items():
        plan.append(((json.dumps(obj, indent=2) + "\n").encode(), f"{prefix}/{name}"))
    if with_data:
        for path in sorted((root / "data_samples").glob("*")):
            if path.is_file() and path.name.endswith(_DATA_SUFFIXES):
                plan.append((path, f"{prefix}/data/{path.name}"))
    plan.append((package["dir"] / SUMS_NAME, f"{prefix}/{SUMS_NAME}"))
    return plan


def upload(folder: str, region: Optional[str] = None, with_data: bool = True, s3=None) -> List[str]:
    """Package and upload everything a cluster needs into ``folder``; return the s3:// URIs."""
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
    package = build_package()
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


#: Files ``create`` checks in S3 before it starts a cluster that would need them.
def required_keys(prefix: str) -> List[str]:
    """Keys the bootstrap action and the notebooks need, relative to the bucket."""
    names = [
        "bootstrap.sh",
        "requirements-emr.txt",
        wheel_name(),
        zip_name(),
        "notebooks.tar.gz",
        "sparkmagic_config.json",
        SUMS_NAME,
    ]
    return [f"{prefix}/{name}" for name in names]


def uploaded_sums(folder: str, s3) -> Dict[str, str]:
    """Check that every required file is in ``folder``; return its ``SHA256SUMS`` as a dict."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(folder)
    missing = []
    for key in required_keys(prefix):
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
            f"{missing[0]}. Fix: run `ctr-lab emr upload --bucket {folder}`"
        )
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{SUMS_NAME}")["Body"].read()
    sums = read_sums(body.decode())
    if wheel_name() not in sums:
        raise CtrLabError(
            f"{folder}/{SUMS_NAME} does not list {wheel_name()}. "
            f"Fix: run `ctr-lab emr upload --bucket {folder}`"
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

    folder = s3_folder(folder)
    if split_s3(folder)[0] == PLACEHOLDER_BUCKET:
        raise CtrLabError(
            f"--bucket {folder} is the placeholder. Fix: pass --bucket s3://<your bucket> "
            "(or set CTR_LAB_BUCKET)"
        )
    s3 = s3 or _client("s3", region)
    sums = uploaded_sums(folder, s3)
    sha = sums[wheel_name()]
    if sums.get(zip_name()) != current_zip_sha256():
        raise CtrLabError(
            f"the ctr_lab build in {folder} was made from other sources than this checkout "
            f"({zip_name()} differs). Fix: run `ctr-lab emr upload --bucket {folder}` so the "
            "cluster runs this checkout's code"
        )
    request = build_request(preset_name, folder, sha, **options)
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
    return {
        "id": cluster["Id"],
        "name": cluster.get("Name"),
        "state": status.get("State"),
        "reason": status.get("StateChangeReason", {}).get("Message", ""),
        "primary_dns": cluster.get("MasterPublicDnsName"),
        "release": cluster.get("ReleaseLabel"),
        "normalized_instance_hours": cluster.get("NormalizedInstanceHours"),
        "idle_timeout_seconds": idle,
        "tags": _tags(cluster),
    }


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


def tunnel_hint(primary_dns: Optional[str]) -> str:
    """The SSH tunnel command to JupyterHub on the primary node."""
    host = primary_dns or "<primary-node-public-dns>"
    return f"ssh -i ~/.ssh/YOUR-KEY.pem -N -L 9443:localhost:9443 hadoop@{host}"


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
    options = {"name": args.name, "key_name": args.key_name, "subnet_id": args.subnet_id}
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
    print(f"created {cluster_id} ({request['Name']}); it stops by itself after {idle} s idle")
    print(f"watch it:     ctr-lab emr status {cluster_id}")
    print(f"stop it:      ctr-lab emr terminate {cluster_id}")
    if not args.key_name:
        print("no --key-name: use EMR Studio, or create with an EC2 key pair for the SSH tunnel")
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    est = estimate(args.preset, args.rows, args.efficiency)
    print(json.dumps(est, indent=2) if args.json else format_estimate(est))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    emr = _client("emr", args.region)
    found = [cluster_status(args.cluster_id, emr)] if args.cluster_id else active_clusters(emr)
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    if not found:
        print("no active ctr-lab clusters (nothing is billing)")
        return 0
    for c in found:
        idle = f"{c['idle_timeout_seconds']} s" if c["idle_timeout_seconds"] else "unknown"
        print(f"{c['id']}  {c['state']:<13} {c['name']}  idle timeout {idle}")
        if c["reason"]:
            print(f"  reason: {c['reason']}")
        if c["state"] in ("RUNNING", "WAITING"):
            print(f"  tunnel: {tunnel_hint(c['primary_dns'])}  then https://localhost:9443")
    return 0


def _cmd_terminate(args: argparse.Namespace) -> int:
    print(terminate(args.cluster_id, _client("emr", args.region), force=args.force))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ctr-lab emr`` and its subcommands."""
    emr = sub.add_parser(
        "emr",
        help="package, upload, create, estimate, watch and terminate the lab's EMR cluster",
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
        help="create a cluster from a preset (--dry-run: print the request, touch nothing)",
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
    p.add_argument("--efficiency", type=float, help="parallel efficiency in (0, 1] (default 0.6)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=_cmd_estimate)

    p = cmds.add_parser(
        "status",
        help="state of one cluster, or of every active ctr-lab cluster",
        description="Without CLUSTER_ID: every ctr-lab cluster that is billing now.",
    )
    p.add_argument("cluster_id", nargs="?", help="j-XXXXXXXXXXXXX")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_status)

    p = cmds.add_parser(
        "terminate",
        help="terminate a ctr-lab cluster",
        description="Terminate a cluster created by `ctr-lab emr create` (tag project=ctr-lab).",
    )
    p.add_argument("cluster_id", help="j-XXXXXXXXXXXXX")
    p.add_argument("--region", help="AWS region (default: boto3's configuration)")
    p.add_argument("--force", action="store_true", help="also a cluster without the ctr-lab tag")
    p.set_defaults(func=_cmd_terminate)

"""``ctr-lab emr``: requests checked by botocore's own EMR model, AWS calls against moto/Stubber.

No test reaches AWS: request validation uses botocore's bundled service model, and every call
goes to moto's in-process AWS (``mock_aws``) or to a botocore ``Stubber``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from ctr_lab import __version__
from ctr_lab.errors import CtrLabError
from ctr_lab.tools import emr, emr_layout
from ctr_lab.tools.cli import main

REPO = Path(__file__).resolve().parents[1]
EMR_DIR = REPO / "emr_bootstrap"
REGION = "us-east-1"
SHA = "ab" * 32  # the wheel sha256 a fake SHA256SUMS lists
PRESETS = ["quiz", "assignment"]


def _botocore_errors(params, operation="RunJobFlow"):
    model = botocore.session.get_session().get_service_model("emr")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return report.generate_report()


@pytest.fixture
def dist(tmp_path, monkeypatch):
    """A build/dist folder whose SHA256SUMS names this version's wheel with a known sha256."""
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "SHA256SUMS").write_text(f"{SHA}  {emr.wheel_name()}\n{'cd' * 32}  other.zip\n")
    monkeypatch.setattr(emr, "default_dist_dir", lambda: folder)
    return folder


@pytest.fixture
def no_aws_clients(monkeypatch):
    """Fail the test if anything creates an AWS client (which could reach the network)."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("an AWS client was created")

    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)


def _dry_run(capsys, preset, *extra):
    return _dry_run_with_stderr(capsys, preset, *extra)[0]


def _dry_run_with_stderr(capsys, preset, *extra):
    assert main(["emr", "create", "--preset", preset, "--dry-run", "--json", *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


# ------------------------------------------------------------------------------------------------
# create --dry-run: the request
# ------------------------------------------------------------------------------------------------


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _conf(request, name):
    return next(c for c in request["Configurations"] if c["Classification"] == name)["Properties"]


@pytest.mark.parametrize("preset", PRESETS)
def test_dry_run_request_is_valid_for_botocore(preset, dist, no_aws_clients, capsys):
    request = _dry_run(capsys, preset)
    assert _botocore_errors(request) == ""
    # the livy session timeout, at least 3 hours
    livy = _conf(request, "livy-conf")
    assert emr.duration_seconds(livy["livy.server.session.timeout"]) >= 3 * 3600
    # auto-termination inside the API's range (60 s to 7 days)
    assert 60 <= request["AutoTerminationPolicy"]["IdleTimeout"] <= 604800
    # the bootstrap action: the script under its own sha256, the wheel's sha256 from
    # SHA256SUMS, the requirements' sha256, the PySpark Python and the lifetime cap
    (action,) = request["BootstrapActions"]
    script = action["ScriptBootstrapAction"]
    script_sha = _sha256(EMR_DIR / "bootstrap.sh")
    assert script["Path"] == f"s3://YOUR-BUCKET/ctr-lab/sha256/{script_sha}/bootstrap.sh"
    args = dict(zip(script["Args"][::2], script["Args"][1::2]))
    hours = json.loads((EMR_DIR / "presets.json").read_text())["presets"][preset][
        "max_lifetime_hours"
    ]
    assert args == {
        "--s3": "s3://YOUR-BUCKET/ctr-lab",
        "--version": __version__,
        "--sha256": SHA,
        "--requirements-sha256": _sha256(EMR_DIR / "requirements-emr.txt"),
        "--python": "/usr/bin/python3",
        "--max-lifetime-minutes": str(hours * 60),
    }
    assert {"Key": "project", "Value": "ctr-lab"} in request["Tags"]
    assert {"Key": "max-lifetime-hours", "Value": str(hours)} in request["Tags"]
    assert 1 <= hours <= 8  # "a few hours"


@pytest.mark.parametrize("preset", PRESETS)
def test_dry_run_keeps_the_driver_off_spot(preset, dist, no_aws_clients, capsys):
    """Livy runs the driver as the YARN application master (cluster deploy mode); node labels
    put application masters on ON_DEMAND nodes only (EMR 7.2+, AWS's 'Application Master
    placement'); every On-Demand node of the request is a core (or primary) node, every Spot one
    is capped at the On-Demand price."""
    request = _dry_run(capsys, preset)
    livy = _conf(request, "livy-conf")
    assert livy["livy.spark.master"] == "yarn"
    assert livy["livy.spark.deploy-mode"] == "cluster"
    yarn = _conf(request, "yarn-site")
    assert yarn["yarn.node-labels.enabled"] == "true"
    assert yarn["yarn.node-labels.am.default-node-label-expression"] == "ON_DEMAND"
    major, minor, _ = (int(x) for x in request["ReleaseLabel"].split("-")[1].split("."))
    assert (major, minor) >= (7, 2)
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert groups["CORE"]["Market"] == "ON_DEMAND" and "BidPrice" not in groups["CORE"]
    assert groups["TASK"]["Market"] == "SPOT" and groups["TASK"]["BidPrice"] == "OnDemandPrice"
    # one attempt: a lost driver ends the session rather than re-running it elsewhere
    assert _conf(request, "spark-defaults")["spark.yarn.maxAppAttempts"] == "1"


def test_labels_need_a_release_that_has_them(dist, monkeypatch):
    presets = emr.load_presets()
    presets["defaults"]["release_label"] = "emr-7.1.0"
    monkeypatch.setattr(emr, "load_presets", lambda: presets)
    with pytest.raises(CtrLabError, match=r"need emr-7\.2\.0 or later"):
        emr.build_request("quiz", emr.PLACEHOLDER_FOLDER, SHA)


def test_max_hours_sets_the_cap(dist, capsys):
    request = _dry_run(capsys, "assignment", "--max-hours", "2.5")
    args = request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"]
    assert args[args.index("--max-lifetime-minutes") + 1] == "150"
    assert {"Key": "max-lifetime-hours", "Value": "2.5"} in request["Tags"]
    assert main(["emr", "create", "--preset", "quiz", "--dry-run", "--max-hours", "500"]) == 1
    assert "--max-hours 500 is outside" in capsys.readouterr().err


def test_dry_run_with_a_bucket_renders_every_placeholder(dist, capsys):
    request = _dry_run(capsys, "quiz", "--bucket", "s3://my-lab-bucket/course/")
    text = json.dumps(request)
    assert "YOUR-BUCKET" not in text
    assert request["LogUri"] == "s3://my-lab-bucket/course/logs/"
    # JupyterHub saves notebooks to the lab's bucket (EMR's jupyter-s3-conf), not only on the
    # primary node that terminate deletes
    assert _conf(request, "jupyter-s3-conf") == {
        "s3.persistence.enabled": "true",
        "s3.persistence.bucket": "my-lab-bucket",
    }
    conf = next(
        c for c in request["Configurations"] if c["Classification"] == "jupyter-sparkmagic-conf"
    )
    defaults = json.loads(conf["Properties"]["session_configs_defaults"])
    # the pyFiles zip under its sha256 (the dry run's SHA256SUMS lists none: the sources' own)
    zip_sha = emr.current_zip_sha256()
    assert defaults["pyFiles"] == [
        f"s3://my-lab-bucket/course/sha256/{zip_sha}/ctr_lab-{__version__}.zip"
    ]


@pytest.mark.parametrize("preset", PRESETS)
def test_groups_spot_only_for_task_nodes_capped_at_on_demand(preset, dist, capsys):
    request = _dry_run(capsys, preset)
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert set(groups) == {"MASTER", "CORE", "TASK"}
    assert groups["MASTER"]["Market"] == groups["CORE"]["Market"] == "ON_DEMAND"
    task = groups["TASK"]
    assert task["Market"] == "SPOT"
    # AWS's InstanceGroupConfig.BidPrice: "Specify OnDemandPrice to set the amount equal to the
    # On-Demand price, or specify an amount in USD" (a string in botocore's model)
    assert task["BidPrice"] == "OnDemandPrice"
    for group in groups.values():
        (volume,) = group["EbsConfiguration"]["EbsBlockDeviceConfigs"]
        assert volume["VolumeSpecification"]["SizeInGB"] >= 32


def test_preset_spark_sizes_go_into_spark_defaults(dist, capsys):
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    for name in PRESETS:
        request = _dry_run(capsys, name)
        spark = next(
            c for c in request["Configurations"] if c["Classification"] == "spark-defaults"
        )
        for key, value in presets[name]["spark_defaults"].items():
            assert spark["Properties"][key] == value


@pytest.mark.parametrize("preset", PRESETS)
def test_create_puts_the_labs_locations_into_the_cluster_settings(preset, dist, capsys):
    """``--bucket`` gives every Livy session on the cluster the lab's folders (``spark-defaults``,
    read by the notebooks' parameters cell through ``cl.lab_location``): the data ``upload`` put
    in the bucket (the quiz sample, or the full data where ``convert`` writes it), and models and
    validated copies beside it, never on the cluster's HDFS."""
    folder = "s3://my-lab-bucket/course"
    spark = _conf(_dry_run(capsys, preset, "--bucket", folder), "spark-defaults")
    assert spark["spark.ctrlab.modelDir"] == f"{folder}/models"
    assert spark["spark.ctrlab.dataCache"] == f"{folder}/cache"
    assert spark["spark.ctrlab.quizData"] == f"{folder}/data/course_10k.csv"  # notebook 07's file
    assert (REPO / "data_samples" / "course_10k.csv").is_file()  # what upload sends
    if preset == "assignment":
        args = emr.convert_request("j-1", folder)["Steps"][0]["HadoopJarStep"]["Args"]
        assert spark["spark.ctrlab.data"] == args[args.index("--partitions") - 1]  # its target
    else:
        assert spark["spark.ctrlab.data"] == f"{folder}/data/avazu_raw_50k.csv.gz"
        assert (REPO / "data_samples" / "avazu_raw_50k.csv.gz").is_file()  # what upload sends


def _container(heap_mb, step=32):
    """Spark 3.5 on YARN by hand: heap + max(10 %, 384 MiB), rounded up to YARN's step."""
    need = heap_mb + max(int(heap_mb * 0.10), 384)
    return -(-need // step) * step


def test_layout_by_hand():
    """EMR's yarn.nodemanager.resource.memory-mb: 12288 (m5.xlarge), 24576 (m5.2xlarge)."""
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    prices = json.loads((EMR_DIR / "prices.json").read_text())
    assert prices["instances"]["m5.xlarge"]["yarn_mb"] == 12288
    assert prices["instances"]["m5.2xlarge"]["yarn_mb"] == 24576
    quiz = emr_layout.layout(presets["quiz"], prices)
    # quiz: driver 2g -> 2432, executor 4g -> 4096 + 409 = 4505 -> 4512
    assert (quiz["driver_mb"], quiz["executor_mb"]) == (2432, 4512)
    # core: (12288 - 2432) // 4512 = 2; task: 12288 // 4512 = 2
    assert [(n["role"], n["driver"], n["executors"]) for n in quiz["nodes"]] == [
        ("CORE", True, 2),
        ("TASK", False, 2),
    ]
    assert (quiz["executors"], quiz["executor_cores"]) == (4, 8)
    big = emr_layout.layout(presets["assignment"], prices)
    # assignment: driver 4g -> 4505 -> 4512; executor 8g -> 8192 + 819 = 9011 -> 9024
    assert (big["driver_mb"], big["executor_mb"]) == (4512, 9024)
    # the driver's core node: (24576 - 4512) // 9024 = 2; other nodes 24576 // 9024 = 2
    assert [n["executors"] for n in big["nodes"]] == [2] * 6
    assert (big["executors"], big["executor_cores"]) == (12, 48)


def test_nine_gig_executors_leave_eleven_not_twelve():
    """The issue's point: 9g executors (10137 -> 10144 MiB) beside the driver fit once."""
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    prices = json.loads((EMR_DIR / "prices.json").read_text())
    old = json.loads(json.dumps(presets["assignment"]))
    old["spark_defaults"]["spark.executor.memory"] = "9g"
    plan = emr_layout.layout(old, prices)
    assert plan["executor_mb"] == _container(9216) == 10144
    assert (24576 - 4512) // 10144 == 1
    assert [n["executors"] for n in plan["nodes"]] == [1, 2, 2, 2, 2, 2]
    assert (plan["executors"], plan["executor_cores"]) == (11, 44)


@pytest.mark.parametrize("preset", PRESETS)
def test_layout_fits_every_node(preset):
    """Containers within YARN's memory and executor cores within the node's vCPUs."""
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    prices = json.loads((EMR_DIR / "prices.json").read_text())
    spark = presets[preset]["spark_defaults"]
    executor = _container(emr_layout.memory_mb(spark["spark.executor.memory"]))
    driver = _container(emr_layout.memory_mb(spark["spark.driver.memory"]))
    plan = emr_layout.layout(presets[preset], prices)
    assert sum(n["driver"] for n in plan["nodes"]) == 1
    for node in plan["nodes"]:
        used = node["executors"] * executor + (driver if node["driver"] else 0)
        assert used <= node["yarn_mb"]
        assert used + executor > node["yarn_mb"]  # and no room is left for one more
        assert node["executors"] * int(spark["spark.executor.cores"]) <= node["vcpu"]
        assert node["role"] == "CORE" or not node["driver"]  # the driver stays off Spot


def test_layout_refuses_what_does_not_fit():
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    prices = json.loads((EMR_DIR / "prices.json").read_text())
    huge = json.loads(json.dumps(presets["quiz"]))
    huge["spark_defaults"]["spark.executor.memory"] = "12g"
    with pytest.raises(CtrLabError, match=r"does not fit a m5\.xlarge"):
        emr_layout.layout(huge, prices)
    with pytest.raises(CtrLabError, match="not a Spark memory size"):
        emr_layout.memory_mb("lots")


def test_validation_rejects_what_botocore_rejects(dist):
    request = emr.build_request("quiz", emr.PLACEHOLDER_FOLDER, SHA)
    emr.validate_request(request)
    request["Instances"]["InstanceGroups"][0]["InstanceCount"] = "3"
    with pytest.raises(CtrLabError, match="InstanceCount"):
        emr.validate_request(request)
    request = emr.build_request("quiz", emr.PLACEHOLDER_FOLDER, SHA)
    request["AutoTermination"] = {"IdleTimeout": 60}
    with pytest.raises(CtrLabError, match="AutoTermination"):
        emr.validate_request(request)


def test_dry_run_text_has_the_request_and_an_equivalent_cli_command(dist, capsys):
    assert main(["emr", "create", "--preset", "assignment", "--dry-run", "--region", REGION]) == 0
    out = capsys.readouterr().out
    head, command = out.split("# the same request with the AWS CLI\n")
    request = json.loads(head.split("\n", 1)[1])
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["aws", "emr", "create-cluster"]
    options = {}
    key = None
    for word in words[3:]:
        if word.startswith("--"):
            key = word
            options[key] = []
        else:
            options[key].append(word)
    # awscli's create-cluster turns --instance-groups into InstanceGroupConfig like this
    # (awscli/customizations/emr/instancegroupsutils.py: a BidPrice makes the group Spot).
    groups = []
    for ig in json.loads(options["--instance-groups"][0]):
        item = {
            "Name": ig["Name"],
            "InstanceType": ig["InstanceType"],
            "InstanceCount": ig["InstanceCount"],
            "InstanceRole": ig["InstanceGroupType"].upper(),
            "Market": "SPOT" if "BidPrice" in ig else "ON_DEMAND",
        }
        if "BidPrice" in ig:
            item["BidPrice"] = ig["BidPrice"]
        item["EbsConfiguration"] = ig["EbsConfiguration"]
        groups.append(item)
    assert groups == request["Instances"]["InstanceGroups"]
    assert json.loads(options["--configurations"][0]) == request["Configurations"]
    (action,) = json.loads(options["--bootstrap-actions"][0])
    assert action["Path"] == request["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"]
    assert action["Args"] == request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"]
    assert options["--auto-termination-policy"] == [
        f"IdleTimeout={request['AutoTerminationPolicy']['IdleTimeout']}"
    ]
    assert options["--applications"] == [f"Name={a['Name']}" for a in request["Applications"]]
    assert options["--release-label"] == [request["ReleaseLabel"]]
    assert options["--region"] == [REGION]
    ec2 = json.loads(options["--ec2-attributes"][0])
    assert ec2 == {"InstanceProfile": request["JobFlowRole"]}


def test_json_without_dry_run_is_refused(capsys):
    assert main(["emr", "create", "--preset", "quiz", "--json"]) == 1
    assert "--json only goes with --dry-run" in capsys.readouterr().err


def test_unknown_preset_lists_the_known_ones(dist, capsys):
    assert main(["emr", "create", "--preset", "exam", "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no preset 'exam'" in err and "assignment, quiz" in err


@pytest.mark.parametrize("uri", ["my-bucket", "s3://My_Bucket", "https://x.s3.amazonaws.com/a"])
def test_bad_bucket_uri_is_a_clear_error(uri):
    with pytest.raises(CtrLabError, match="is not an S3 bucket URI"):
        emr.s3_folder(uri)


@pytest.mark.parametrize(
    ("uri", "folder"),
    [
        ("s3://my-bucket", "s3://my-bucket/ctr-lab"),
        ("s3://my-bucket/", "s3://my-bucket/ctr-lab"),
        ("s3://my-bucket/a/b/", "s3://my-bucket/a/b"),
    ],
)
def test_bucket_folder(uri, folder):
    assert emr.s3_folder(uri) == folder


# ------------------------------------------------------------------------------------------------
# The configuration files
# ------------------------------------------------------------------------------------------------


def test_sparkmagic_classification_agrees_with_the_template():
    template = json.loads((EMR_DIR / "sparkmagic_config.json").read_text())
    configs = json.loads((EMR_DIR / "configurations.json").read_text())
    (conf,) = [c for c in configs if c["Classification"] == "jupyter-sparkmagic-conf"]
    props = conf["Properties"]
    assert set(props) == set(template)
    for key, value in props.items():
        assert isinstance(value, str), f"{key}: EMR classification values are strings"
        assert json.loads(value) == template[key], key


def test_sparkmagic_template_values():
    template = json.loads((EMR_DIR / "sparkmagic_config.json").read_text())
    assert template["kernel_python_credentials"] == {
        "username": "",
        "password": "",
        "url": "http://localhost:8998",
        "auth": "None",
    }
    assert template["livy_session_startup_timeout_seconds"] == 120
    assert template["livy_server_heartbeat_timeout_seconds"] == 60
    # Deleting a session waits for the heartbeat thread's sleep (30 s by default): a few seconds,
    # and still many heartbeats within Livy's timeout.
    assert template["heartbeat_refresh_seconds"] == 5
    assert template["use_auto_viz"] is False and template["coerce_dataframe"] is False
    assert template["session_configs_defaults"]["pyFiles"] == [
        f"{emr.PLACEHOLDER_FOLDER}/ctr_lab-{__version__}.zip"
    ]


def test_sparkmagic_reads_every_key_of_the_template():
    """Every key is one sparkmagic 0.23.0 reads (a typo would be silently ignored)."""
    configuration = pytest.importorskip("sparkmagic.utils.configuration")
    template = json.loads((EMR_DIR / "sparkmagic_config.json").read_text())
    for key in template:
        assert callable(getattr(configuration, key, None)), key


def test_pyspark_python_is_the_same_for_spark_and_livy():
    configs = json.loads((EMR_DIR / "configurations.json").read_text())
    assert emr.pyspark_python(configs) == "/usr/bin/python3"
    livy = next(c for c in configs if c["Classification"] == "livy-env")
    livy["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] = "/usr/bin/python3.11"
    with pytest.raises(CtrLabError, match=r"spark-env but '/usr/bin/python3\.11' in livy-env"):
        emr.pyspark_python(configs)


def test_requirements_pin_every_dependency_of_the_wheel():
    """The wheel is installed with --no-deps: its declared dependencies must be pinned here."""
    from importlib.metadata import requires

    pinned = {}
    for line in (EMR_DIR / "requirements-emr.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pinned[name.lower()] = version
    for requirement in requires("ctr-lab") or []:
        if "extra ==" in requirement:
            continue
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        assert name in pinned, requirement
    assert "pyspark" not in pinned


@pytest.mark.parametrize(
    ("text", "seconds"), [("3h", 10800), ("90m", 5400), ("45s", 45), ("1d", 86400), ("500", 0)]
)
def test_duration_seconds(text, seconds):
    assert emr.duration_seconds(text) == seconds


# ------------------------------------------------------------------------------------------------
# estimate
# ------------------------------------------------------------------------------------------------


def test_estimate_matches_a_hand_computation():
    est = emr.estimate("assignment", rows=40_428_967)
    # prices.json (us-east-1): m5.xlarge $0.192 + $0.048 EMR; m5.2xlarge $0.384 + $0.096 EMR;
    # one primary m5.xlarge, 2 core + 4 task m5.2xlarge.
    compute = 1 * (0.192 + 0.048) + 6 * (0.384 + 0.096)
    # EBS gp3 $0.08 per GB-month, 730 h: 32 GB root on every node, plus 32/128/64 GB volumes
    ebs_gb = 1 * (32 + 32) + 2 * (32 + 128) + 4 * (32 + 64)
    assert est["per_hour"]["total"] == pytest.approx(compute + ebs_gb * 0.08 / 730)
    # BENCHMARKS.md, 10M rows, `recommended` on 2 cores: load 54.3, featurize 110.4, fit 58.5,
    # score 16.3 s; on 12 executors x 4 cores = 48 cores at the efficiency the standalone
    # cluster kept at 1M rows, its lower one (49.7 s on local[*], 75.8 s on the cluster)
    speedup = 48 * (49.7 / 75.8) / 2
    scale = 40_428_967 / 10_000_000
    for stage, measured in {"load": 54.3, "featurize": 110.4, "fit": 58.5, "score": 16.3}.items():
        assert est["seconds"][stage] == pytest.approx(measured * scale / speedup)
    hours = (12 * 60 + (54.3 + 110.4 + 58.5 + 16.3) * scale / speedup + 3600) / 3600
    assert est["run_cost"] == pytest.approx(hours * est["per_hour"]["total"])
    # a forgotten notebook: Livy's 3 h idle-session timeout, then the 1 h idle timeout
    assert est["forgotten_session_hours"] == pytest.approx(4.0)
    # the hard cap: 6 h at most, whatever happens
    assert est["max_lifetime_cost"] == pytest.approx(6 * est["per_hour"]["total"])
    assert emr.estimate("assignment", max_hours=3)["forgotten_session_hours"] == 3


def test_estimate_command_names_its_measurement(capsys):
    assert main(["emr", "estimate", "--preset", "assignment", "--rows", "40428967"]) == 0
    out = capsys.readouterr().out
    est = emr.estimate("assignment", rows=40_428_967)
    assert f"${est['per_hour']['total']:.2f}" in out
    assert f"${est['run_cost']:.2f}" in out
    assert "40,428,967 rows" in out
    assert "assumptions:" in out and "https://aws.amazon.com/emr/pricing/" in out
    measured = json.loads((EMR_DIR / "throughput.json").read_text())["measurement"]
    assert measured["command"] in out and measured["date"] in out and "BENCHMARKS.md" in out
    assert "12 executors (48 cores" in out
    assert "hard cap: the cluster halts 6 h after it starts" in out
    assert f"at most ${6 * est['per_hour']['total']:.2f}" in out
    assert "train.gz to Parquet" in out  # the one-time gzip cost


def _benchmarks_section(heading):
    """The text of the BENCHMARKS.md section whose heading line starts with ``heading``."""
    lines = (REPO / "BENCHMARKS.md").read_text().splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith(heading)]
    end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[at:end])


def _cells(line):
    """The cells of a Markdown table's row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _benchmarks_row(section, title, peer):
    """The row of ``peer`` in the first table titled ``title`` (in bold) in ``section``, and
    the title's line."""
    block = section[section.index(title) :]
    header = next(line for line in block.splitlines() if line.startswith("| peer"))
    row = next(line for line in block.splitlines() if line.startswith(f"| {peer} |"))
    return dict(zip(_cells(header), _cells(row))), block.splitlines()[0]


def test_throughput_is_the_benchmark_it_names():
    """throughput.json's stages are the `recommended` row of the BENCHMARKS.md table it names,
    in the section it names, of the date and command it names."""
    speed = json.loads((EMR_DIR / "throughput.json").read_text())
    measured = speed["measurement"]
    section = _benchmarks_section(measured["section"])
    assert measured["date"] in section.splitlines()[0]
    assert f"`{measured['command']}`" in " ".join(section.split())
    row, title = _benchmarks_row(section, measured["table"], "recommended")
    found = re.search(r"^\*\*([\d,]+) rows\*\* \(train ([\d,]+), test ([\d,]+)", title)
    assert found, title
    rows, train_rows, test_rows = (int(g.replace(",", "")) for g in found.groups())
    stages = speed["stages"]
    for stage in ("load", "featurize", "fit", "score"):
        assert stages[stage]["seconds"] == float(row[f"{stage} s"]), stage
    assert stages["load"]["rows"] == measured["rows"] == rows
    assert stages["fit"]["rows"] == stages["featurize"]["rows"] == train_rows
    assert stages["score"]["rows"] == test_rows
    conv = speed["convert"]
    text = (REPO / "BENCHMARKS.md").read_text()
    assert conv["command"] in text and f"{conv['seconds']:.1f}" in text


def test_the_efficiency_is_the_standalone_clusters_it_names():
    """throughput.json's distribution runs are the 1M and 3M rows of the BENCHMARKS.md table it
    names (`local[*]` and the standalone cluster), and the estimate's efficiency is the lower of
    their two ratios; ``--efficiency`` replaces it and the output says which it used."""
    dist = json.loads((EMR_DIR / "throughput.json").read_text())["distribution"]
    section = _benchmarks_section(dist["section"])
    assert f"`{dist['command']}`" in " ".join(section.split())
    block = section[section.index(dist["table"]) :]
    assert dist["date"] in block.splitlines()[0]
    totals = {}
    for line in block.splitlines():
        cells = _cells(line)
        if len(cells) > 7 and cells[0] in ("1M", "3M"):
            where = "local" if cells[1].startswith("`local[*]`") else "cluster"
            totals[(int(cells[0][:-1]) * 1_000_000, where)] = float(cells[6])
    assert len(totals) == 4, totals
    assert [(r["rows"], r["local_seconds"], r["cluster_seconds"]) for r in dist["runs"]] == [
        (n, totals[(n, "local")], totals[(n, "cluster")]) for n in (1_000_000, 3_000_000)
    ]
    lowest = min(totals[(n, "local")] / totals[(n, "cluster")] for n in (1_000_000, 3_000_000))
    est = emr.estimate("assignment")
    assert est["assumptions"]["parallel_efficiency"] == pytest.approx(lowest)
    assert "the lowest the standalone cluster kept" in emr.format_estimate(est)
    given = emr.estimate("assignment", efficiency=0.5)
    assert "given with --efficiency" in emr.format_estimate(given)


def test_the_readme_names_the_efficiencies_the_estimate_reads():
    """emr_bootstrap/README.md's two efficiencies are those of throughput.json's runs."""
    runs = json.loads((EMR_DIR / "throughput.json").read_text())["distribution"]["runs"]
    kept = [round(100 * r["local_seconds"] / r["cluster_seconds"]) for r in runs]
    readme = " ".join((EMR_DIR / "README.md").read_text().split())
    assert f"rows ({kept[0]} % and {kept[1]} %, `BENCHMARKS.md`" in readme


def test_estimate_efficiency_scales_the_time():
    slow = emr.estimate("quiz", rows=2_000_000, efficiency=0.3)
    fast = emr.estimate("quiz", rows=2_000_000, efficiency=0.6)
    assert slow["seconds"]["fit"] == pytest.approx(2 * fast["seconds"]["fit"])
    with pytest.raises(CtrLabError, match="must be in"):
        emr.estimate("quiz", efficiency=1.5)


def test_prices_say_their_date_and_source():
    prices = json.loads((EMR_DIR / "prices.json").read_text())
    assert prices["date"] and prices["region"] == "us-east-1"
    assert "https://aws.amazon.com/emr/pricing/" in prices["source"]["emr"]
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    used = {g["instance_type"] for p in presets.values() for g in p["instance_groups"].values()}
    assert used <= set(prices["instances"])


# ------------------------------------------------------------------------------------------------
# AWS calls against moto
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    moto = pytest.importorskip("moto")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield


@pytest.fixture
def fake_package(tmp_path, monkeypatch, dist):
    """Small stand-ins for the package files, so these tests do not build a wheel."""
    files = {}
    for name in (emr.wheel_name(), emr.zip_name(), "notebooks.tar.gz"):
        files[name] = dist / name
        files[name].write_bytes(name.encode())
    # SHA256SUMS as `package` writes it: the zip's entry is that of the sources imported now
    current = emr.current_zip_sha256()
    made = {"dir": dist, "files": files, "sha256": {emr.wheel_name(): SHA, emr.zip_name(): current}}
    (dist / "SHA256SUMS").write_text(f"{SHA}  {emr.wheel_name()}\n{current}  {emr.zip_name()}\n")
    monkeypatch.setattr(emr, "build_package", lambda out_dir=None: made)
    return made


def _bucket(name="lab-bucket"):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=name)
    return name


def _keys(bucket):
    s3 = boto3.client("s3", region_name=REGION)
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_upload_puts_every_file_in_the_folder(aws, fake_package, capsys):
    bucket = _bucket()
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}"]) == 0
    keys = _keys(bucket)
    s3 = boto3.client("s3", region_name=REGION)
    body = s3.get_object(Bucket=bucket, Key="ctr-lab/SHA256SUMS")["Body"].read().decode()
    sums = emr.read_sums(body)
    assert sums["bootstrap.sh"] == _sha256(EMR_DIR / "bootstrap.sh")
    assert sums["emr_convert.py"] == _sha256(REPO / "ctr_lab" / "tools" / "emr_convert.py")
    expected = set(emr.required_keys("ctr-lab", sums)) | {"ctr-lab/configurations.json"}
    assert f"ctr-lab/sha256/{SHA}/{emr.wheel_name()}" in expected
    assert expected <= keys
    samples = sorted(p.name for p in (REPO / "data_samples").glob("*.csv*"))
    assert samples and {f"ctr-lab/data/{n}" for n in samples} <= keys
    body = s3.get_object(Bucket=bucket, Key="ctr-lab/sparkmagic_config.json")["Body"].read()
    rendered = json.loads(body)
    zip_sha = sums[emr.zip_name()]
    assert rendered["session_configs_defaults"]["pyFiles"] == [
        f"s3://{bucket}/ctr-lab/sha256/{zip_sha}/ctr_lab-{__version__}.zip"
    ]
    key = f"ctr-lab/sha256/{sums['bootstrap.sh']}/bootstrap.sh"
    script = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert script == (EMR_DIR / "bootstrap.sh").read_bytes()
    out = capsys.readouterr().out
    assert out.index("SHA256SUMS") > out.index(emr.wheel_name())  # the sums go last


def test_upload_to_a_missing_bucket_is_one_line(aws, fake_package, capsys):
    assert main(["emr", "upload", "--bucket", "s3://no-such-bucket-here"]) == 1
    err = capsys.readouterr().err.strip()
    assert "s3://no-such-bucket-here is not a bucket you can write to" in err
    assert "\n" not in err


def test_create_checks_the_upload_then_starts_a_tagged_cluster(aws, fake_package, capsys):
    bucket = _bucket()
    assert main(["emr", "create", "--preset", "quiz", "--bucket", f"s3://{bucket}"]) == 1
    assert "file(s) the cluster needs are not in" in capsys.readouterr().err
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}", "--no-data"]) == 0
    capsys.readouterr()
    assert main(["emr", "create", "--preset", "quiz", "--bucket", f"s3://{bucket}"]) == 0
    out = capsys.readouterr().out
    cluster_id = out.split()[1]
    client = boto3.client("emr", region_name=REGION)
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Name"] == "ctr-lab-quiz"
    assert {"Key": "project", "Value": "ctr-lab"} in cluster["Tags"]
    (action,) = client.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    script_sha = _sha256(EMR_DIR / "bootstrap.sh")
    assert action["ScriptPath"] == f"s3://{bucket}/ctr-lab/sha256/{script_sha}/bootstrap.sh"
    assert SHA in action["Args"]


def test_create_refuses_when_s3_holds_another_build(aws, fake_package, capsys):
    bucket = _bucket()
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}", "--no-data"]) == 0
    # S3 now holds a build of other sources: its pyFiles zip has another sha256
    s3 = boto3.client("s3", region_name=REGION)
    sums = emr.read_sums(
        s3.get_object(Bucket=bucket, Key="ctr-lab/SHA256SUMS")["Body"].read().decode()
    )
    sums[emr.zip_name()] = "ef" * 32
    s3.put_object(Bucket=bucket, Key=f"ctr-lab/sha256/{'ef' * 32}/{emr.zip_name()}", Body=b"x")
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    s3.put_object(Bucket=bucket, Key="ctr-lab/SHA256SUMS", Body=text.encode())
    assert main(["emr", "create", "--preset", "quiz", "--bucket", f"s3://{bucket}"]) == 1
    err = capsys.readouterr().err
    assert "was made from other sources than this checkout" in err and "emr upload" in err
    assert boto3.client("emr", region_name=REGION).list_clusters()["Clusters"] == []


def test_dry_run_notes_a_package_older_than_the_sources(dist, capsys):
    _, err = _dry_run_with_stderr(capsys, "quiz")  # the fixture lists no zip for these sources
    assert "was built from other sources" in err
    current = emr.current_zip_sha256()
    (dist / "SHA256SUMS").write_text(f"{SHA}  {emr.wheel_name()}\n{current}  {emr.zip_name()}\n")
    request, err = _dry_run_with_stderr(capsys, "quiz")
    assert err == ""
    assert SHA in request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"]


def test_create_refuses_the_placeholder_bucket(aws, capsys):
    assert main(["emr", "create", "--preset", "quiz"]) == 1
    assert "is the placeholder" in capsys.readouterr().err


def test_status_lists_only_active_ctr_lab_clusters(aws, fake_package, capsys):
    client = boto3.client("emr", region_name=REGION)
    ours = client.run_job_flow(**emr.build_request("quiz", "s3://lab-bucket", SHA))["JobFlowId"]
    other = client.run_job_flow(
        Name="someone-else",
        ReleaseLabel="emr-7.12.0",
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        ServiceRole="EMR_DefaultRole",
        JobFlowRole="EMR_EC2_DefaultRole",
    )["JobFlowId"]
    assert main(["emr", "status", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in found] == [ours]
    assert other != ours


def test_terminate_only_ctr_lab_clusters(aws, capsys):
    client = boto3.client("emr", region_name=REGION)
    ours = client.run_job_flow(**emr.build_request("quiz", "s3://lab-bucket", SHA))["JobFlowId"]
    request = emr.build_request("quiz", "s3://lab-bucket", SHA)
    request["Tags"] = []
    other = client.run_job_flow(**request)["JobFlowId"]
    assert main(["emr", "terminate", other]) == 1
    assert "has no tag project=ctr-lab" in capsys.readouterr().err
    assert client.describe_cluster(ClusterId=other)["Cluster"]["Status"]["State"] == "WAITING"
    assert main(["emr", "terminate", ours]) == 0
    assert "is terminating" in capsys.readouterr().out
    assert client.describe_cluster(ClusterId=ours)["Cluster"]["Status"]["State"] == "TERMINATED"
    assert main(["emr", "terminate", ours]) == 0
    assert "already TERMINATED" in capsys.readouterr().out
    assert main(["emr", "status"]) == 0
    assert "no active ctr-lab clusters" in capsys.readouterr().out


def test_status_shows_idle_timeout_and_tunnel(capsys):
    """moto lacks GetAutoTerminationPolicy: a Stubber answers with botocore's response shapes."""
    client = boto3.client(
        "emr", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_response(
        "describe_cluster",
        {
            "Cluster": {
                "Id": "j-ABC",
                "Name": "ctr-lab-quiz",
                "Status": {"State": "WAITING", "StateChangeReason": {"Message": "ready"}},
                "MasterPublicDnsName": "ec2-1-2-3-4.compute-1.amazonaws.com",
                "Tags": [{"Key": "project", "Value": "ctr-lab"}],
            }
        },
        {"ClusterId": "j-ABC"},
    )
    stub.add_response(
        "get_auto_termination_policy",
        {"AutoTerminationPolicy": {"IdleTimeout": 1800}},
        {"ClusterId": "j-ABC"},
    )
    with stub:
        info = emr.cluster_status("j-ABC", client)
    stub.assert_no_pending_responses()
    assert info["idle_timeout_seconds"] == 1800 and info["state"] == "WAITING"
    assert "hadoop@ec2-1-2-3-4.compute-1.amazonaws.com" in emr.tunnel_hint(info["primary_dns"])
    assert "9443:localhost:9443" in emr.tunnel_hint(info["primary_dns"])


def test_missing_credentials_is_one_line(monkeypatch, tmp_path, fake_package, capsys):
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)  # no credential source at all, and none that reaches a network
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["emr", "upload", "--bucket", "s3://lab-bucket", "--region", REGION]) == 1
    err = capsys.readouterr().err.strip()
    assert "no AWS credentials found" in err and "\n" not in err


def test_no_region_is_one_line(monkeypatch, tmp_path, capsys):
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["emr", "status"]) == 1
    assert "no AWS region configured" in capsys.readouterr().err


def test_emr_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["emr", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("package", "upload", "create", "estimate", "status", "terminate"):
        assert name in out


def test_outside_a_checkout_is_a_clear_error(monkeypatch, tmp_path):
    import ctr_lab

    fake = tmp_path / "site-packages" / "ctr_lab" / "__init__.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("")
    monkeypatch.setattr(ctr_lab, "__file__", str(fake))
    with pytest.raises(CtrLabError, match="not a ctr-lab source checkout"):
        emr.source_root()


def test_notebooks_archive_ships_the_starter_but_not_the_solution(tmp_path):
    import tarfile

    archive = emr.build_notebooks_archive(tmp_path)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "00_setup.ipynb" in names and "assignment/starter.ipynb" in names
    assert "assignment/solution.ipynb" not in names


# ------------------------------------------------------------------------------------------------
# Content-addressed uploads, the lifetime cap and what keeps a cluster busy
# ------------------------------------------------------------------------------------------------


def _real_package(dist, wheel_bytes):
    """A package stand-in whose SHA256SUMS holds the real sha256 of each file."""
    files = {}
    for name, data in (
        (emr.wheel_name(), wheel_bytes),
        (emr.zip_name(), None),
        ("notebooks.tar.gz", b"notebooks"),
    ):
        files[name] = dist / name
        if data is None:  # the zip of the sources imported now, as `package` builds it
            from ctr_lab.tools.bundle import build_zip

            files[name] = Path(build_zip(dist))
        else:
            files[name].write_bytes(data)
    sums = {name: _sha256(path) for name, path in files.items()}
    (dist / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    return {"dir": dist, "files": files, "sha256": sums}


def _get(bucket, uri_or_key):
    key = uri_or_key.split(f"s3://{bucket}/", 1)[-1]
    s3 = boto3.client("s3", region_name=REGION)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_second_upload_never_changes_what_a_running_cluster_verifies(
    aws, dist, monkeypatch, capsys
):
    bucket = _bucket()
    first = _real_package(dist, b"wheel, first build")
    monkeypatch.setattr(emr, "build_package", lambda out_dir=None: first)
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}", "--no-data"]) == 0
    assert main(["emr", "create", "--preset", "quiz", "--bucket", f"s3://{bucket}"]) == 0
    cluster_id = capsys.readouterr().out.split("created ")[1].split()[0]
    client = boto3.client("emr", region_name=REGION)
    (action,) = client.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    args = dict(zip(action["Args"][::2], action["Args"][1::2]))
    assert args["--sha256"] == hashlib.sha256(b"wheel, first build").hexdigest()

    second = _real_package(dist, b"wheel, second build with changes")
    monkeypatch.setattr(emr, "build_package", lambda out_dir=None: second)
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}", "--no-data"]) == 0
    latest = emr.read_sums(_get(bucket, "ctr-lab/SHA256SUMS").decode())
    assert latest[emr.wheel_name()] != args["--sha256"]  # the folder moved on ...

    # ... and a node of the first cluster that bootstraps now reads what bootstrap.sh reads:
    folder = args["--s3"]
    wheel = _get(bucket, f"{folder}/sha256/{args['--sha256']}/{emr.wheel_name()}")
    assert hashlib.sha256(wheel).hexdigest() == args["--sha256"]
    req = _get(bucket, f"{folder}/sha256/{args['--requirements-sha256']}/requirements-emr.txt")
    assert hashlib.sha256(req).hexdigest() == args["--requirements-sha256"]
    script = _get(bucket, action["ScriptPath"])
    assert hashlib.sha256(script).hexdigest() == action["ScriptPath"].split("/")[-2]
    # and its Livy sessions still load the first build's pyFiles zip
    config = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Configurations"]
    magic = next(c for c in config if c["Classification"] == "jupyter-sparkmagic-conf")
    (zip_uri,) = json.loads(magic["Properties"]["session_configs_defaults"])["pyFiles"]
    assert hashlib.sha256(_get(bucket, zip_uri)).hexdigest() == first["sha256"][emr.zip_name()]


class _Livy:
    """GET /sessions as Livy 0.8 answers it (SessionServlet: from, total, sessions)."""

    def __init__(self, sessions):
        import http.server
        import threading

        body = json.dumps({"from": 0, "total": len(sessions), "sessions": sessions}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/sessions":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_status_shows_the_cap_steps_and_open_livy_sessions(aws, capsys):
    client = boto3.client("emr", region_name=REGION)
    request = emr.build_request("quiz", "s3://lab-bucket", SHA, max_hours=3)
    cluster_id = client.run_job_flow(**request)["JobFlowId"]
    convert = emr.convert_request(cluster_id, "s3://lab-bucket")
    client.add_job_flow_steps(**convert)
    livy = _Livy(
        [
            {"id": 0, "kind": "pyspark", "state": "idle", "appId": "application_1_0001"},
            {"id": 1, "kind": "pyspark", "state": "dead", "appId": "application_1_0002"},
            {"id": 2, "kind": "pyspark", "state": "busy", "appId": "application_1_0003"},
        ]
    )
    try:
        assert main(["emr", "status", cluster_id, "--livy-url", livy.url, "--json"]) == 0
        (found,) = json.loads(capsys.readouterr().out)
        assert found["max_lifetime_hours"] == 3
        created = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["Timeline"]
        import datetime

        halts = datetime.datetime.fromisoformat(found["halts_by"])
        assert halts - created["CreationDateTime"] == datetime.timedelta(hours=3)
        (step,) = found["activity"]["steps"]
        assert step["name"] == "ctr-lab: convert train.gz to Parquet"
        assert [s["id"] for s in found["activity"]["livy_sessions"]] == [0, 2]  # not the dead one
        assert main(["emr", "status", cluster_id, "--livy-url", livy.url]) == 0
        out = capsys.readouterr().out
        assert "hard cap: halts 3 h after it started" in out
        assert "1 step(s) pending or running" in out and "Livy sessions open: 2" in out
    finally:
        livy.close()
    assert main(["emr", "status", cluster_id]) == 0
    assert "Livy sessions: not checked (add --livy-url" in capsys.readouterr().out
    assert main(["emr", "status", cluster_id, "--livy-url", livy.url]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "-L 8998:localhost:8998" in err


def test_convert_dry_run_is_a_valid_step_and_adds_it(aws, capsys):
    assert main(["emr", "convert", "--bucket", "s3://lab-bucket", "--dry-run"]) == 0
    out = capsys.readouterr().out
    request = json.loads(
        out.split("# AddJobFlowSteps request")[1].split("\n", 1)[1].split("\n#")[0]
    )
    assert _botocore_errors(request, "AddJobFlowSteps") == ""
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    script_sha = _sha256(REPO / "ctr_lab" / "tools" / "emr_convert.py")
    assert args[:4] == [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        f"s3://lab-bucket/ctr-lab/sha256/{script_sha}/emr_convert.py",
    ]
    assert args[4:6] == [
        "s3://lab-bucket/ctr-lab/data/avazu/train.gz",
        "s3://lab-bucket/ctr-lab/data/avazu/train_parquet",
    ]
    assert "aws emr add-steps" in out
    assert main(["emr", "convert", "--bucket", "s3://lab-bucket"]) == 1
    assert "--cluster-id is missing" in capsys.readouterr().err
    client = boto3.client("emr", region_name=REGION)
    cluster_id = client.run_job_flow(**emr.build_request("quiz", "s3://lab-bucket", SHA))[
        "JobFlowId"
    ]
    assert main(["emr", "convert", "--bucket", "s3://lab-bucket", "--cluster-id", cluster_id]) == 0
    assert "added step" in capsys.readouterr().out
    (step,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["Config"]["Args"] == args


def test_convert_without_a_bucket_says_none_was_given(no_aws_clients, monkeypatch, capsys):
    monkeypatch.delenv("CTR_LAB_BUCKET", raising=False)
    assert main(["emr", "convert", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ctr-lab: error: no S3 bucket was given")
    assert "Fix: pass --bucket s3://<your bucket>" in err and "CTR_LAB_BUCKET" in err

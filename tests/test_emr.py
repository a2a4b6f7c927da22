"""``ctr-lab emr``: requests checked by botocore's own EMR model, AWS calls against moto/Stubber.

No test reaches AWS: request validation uses botocore's bundled service model, and every call
goes to moto's in-process AWS (``mock_aws``) or to a botocore ``Stubber``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from ctr_lab import __version__, emr
from ctr_lab.errors import CtrLabError
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


@pytest.mark.parametrize("preset", PRESETS)
def test_dry_run_request_is_valid_for_botocore(preset, dist, no_aws_clients, capsys):
    request = _dry_run(capsys, preset)
    assert _botocore_errors(request) == ""
    # the livy session timeout, at least 3 hours
    livy = next(c for c in request["Configurations"] if c["Classification"] == "livy-conf")
    assert emr.duration_seconds(livy["Properties"]["livy.server.session.timeout"]) >= 3 * 3600
    # auto-termination inside the API's range (60 s to 7 days)
    assert 60 <= request["AutoTerminationPolicy"]["IdleTimeout"] <= 604800
    # the bootstrap action, with the wheel's sha256 from SHA256SUMS and the PySpark Python
    (action,) = request["BootstrapActions"]
    script = action["ScriptBootstrapAction"]
    assert script["Path"] == "s3://YOUR-BUCKET/ctr-lab/bootstrap.sh"
    args = dict(zip(script["Args"][::2], script["Args"][1::2]))
    assert args == {
        "--s3": "s3://YOUR-BUCKET/ctr-lab",
        "--version": __version__,
        "--sha256": SHA,
        "--python": "/usr/bin/python3",
    }
    assert {"Key": "project", "Value": "ctr-lab"} in request["Tags"]


def test_dry_run_with_a_bucket_renders_every_placeholder(dist, capsys):
    request = _dry_run(capsys, "quiz", "--bucket", "s3://my-lab-bucket/course/")
    text = json.dumps(request)
    assert "YOUR-BUCKET" not in text
    assert request["LogUri"] == "s3://my-lab-bucket/course/logs/"
    conf = next(
        c for c in request["Configurations"] if c["Classification"] == "jupyter-sparkmagic-conf"
    )
    defaults = json.loads(conf["Properties"]["session_configs_defaults"])
    assert defaults["pyFiles"] == [f"s3://my-lab-bucket/course/ctr_lab-{__version__}.zip"]


@pytest.mark.parametrize("preset", PRESETS)
def test_groups_spot_only_for_task_nodes_capped_at_on_demand(preset, dist, capsys):
    request = _dry_run(capsys, preset)
    prices = json.loads((EMR_DIR / "prices.json").read_text())["instances"]
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert set(groups) == {"MASTER", "CORE", "TASK"}
    assert groups["MASTER"]["Market"] == groups["CORE"]["Market"] == "ON_DEMAND"
    task = groups["TASK"]
    assert task["Market"] == "SPOT"
    assert float(task["BidPrice"]) == pytest.approx(prices[task["InstanceType"]]["ec2_on_demand"])
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


def test_executors_fit_the_nodes_of_each_preset():
    """Executor cores never exceed a node's vCPUs; the quiz core node also holds the driver."""
    presets = json.loads((EMR_DIR / "presets.json").read_text())["presets"]
    prices = json.loads((EMR_DIR / "prices.json").read_text())["instances"]
    for name in PRESETS:
        spark = presets[name]["spark_defaults"]
        cores = int(spark["spark.executor.cores"])
        for role in ("CORE", "TASK"):
            vcpu = prices[presets[name]["instance_groups"][role]["instance_type"]]["vcpu"]
            assert vcpu % cores == 0 and vcpu >= cores


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
    # BENCHMARKS.md: recommended fit 178,977 rows in 142 s and 1M rows loaded in 22.0 - 8 s, on
    # 2 cores; 6 x 8 vCPU - 1 driver core = 47 cores at 60 % efficiency
    fit_s = 40_428_967 / (178_977 / 142 / 2 * 47 * 0.6)
    load_s = 40_428_967 / (1_000_000 / 14 / 2 * 47 * 0.6)
    assert est["seconds"]["fit"] == pytest.approx(fit_s)
    assert est["seconds"]["load"] == pytest.approx(load_s)
    hours = (12 * 60 + load_s + fit_s + 3600) / 3600
    assert est["run_cost"] == pytest.approx(hours * est["per_hour"]["total"])
    # a forgotten notebook: Livy's 3 h idle-session timeout, then the 1 h idle timeout
    assert est["forgotten_session_hours"] == pytest.approx(4.0)


def test_estimate_command_prints_cost_time_and_assumptions(capsys):
    assert main(["emr", "estimate", "--preset", "assignment", "--rows", "40428967"]) == 0
    out = capsys.readouterr().out
    est = emr.estimate("assignment", rows=40_428_967)
    assert f"${est['per_hour']['total']:.2f}" in out
    assert f"${est['run_cost']:.2f}" in out
    assert "40,428,967 rows" in out
    assert "assumptions:" in out and "https://aws.amazon.com/emr/pricing/" in out
    assert "BENCHMARKS.md" in out


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
    expected = set(emr.required_keys("ctr-lab")) | {"ctr-lab/configurations.json"}
    assert expected <= keys
    samples = sorted(p.name for p in (REPO / "data_samples").glob("*.csv*"))
    assert samples and {f"ctr-lab/data/{n}" for n in samples} <= keys
    s3 = boto3.client("s3", region_name=REGION)
    body = s3.get_object(Bucket=bucket, Key="ctr-lab/sparkmagic_config.json")["Body"].read()
    rendered = json.loads(body)
    assert rendered["session_configs_defaults"]["pyFiles"] == [
        f"s3://{bucket}/ctr-lab/ctr_lab-{__version__}.zip"
    ]
    script = s3.get_object(Bucket=bucket, Key="ctr-lab/bootstrap.sh")["Body"].read()
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
    assert action["ScriptPath"] == f"s3://{bucket}/ctr-lab/bootstrap.sh"
    assert SHA in action["Args"]


def test_create_refuses_when_s3_holds_another_build(aws, fake_package, capsys):
    bucket = _bucket()
    assert main(["emr", "upload", "--bucket", f"s3://{bucket}", "--no-data"]) == 0
    # S3 now holds a build of other sources: its pyFiles zip has another sha256
    sums = f"{SHA}  {emr.wheel_name()}\n{'ef' * 32}  {emr.zip_name()}\n"
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=bucket, Key="ctr-lab/SHA256SUMS", Body=sums.encode())
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

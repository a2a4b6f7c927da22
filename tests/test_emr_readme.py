"""Every command of ``emr_bootstrap/README.md``: ``aws`` ones against botocore's models, ``ctr-lab``
ones run offline.

An ``aws SERVICE OPERATION --option value ...`` line is read the way the AWS CLI reads it
(awscli's ``clidriver``: the operation and every ``--option`` are botocore names put through
``xform_name(name, "-")``; a structure or list value is JSON or the shorthand ``Key=value,Key2=v``;
a list option takes one word per item) and the parameters it builds are validated by botocore's
``ParamValidator`` against the operation's input shape, as the CLI does before it sends anything.
``aws ... wait WAITER`` is checked against the waiter's operation. The few commands awscli adds
on top of the models (``s3 cp/mb/rm``, ``emr create-default-roles``) are checked against the
options awscli's source gives them. ``--query`` expressions must compile with JMESPath.

``ctr-lab`` lines run in order, in this process, against moto's in-process AWS, with the cluster
id ``create`` printed in place of ``j-XXXXXXXXXXXXX``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List, Tuple

import boto3
import botocore.session
import jmespath
import pytest
from botocore import xform_name
from botocore.validate import ParamValidator

from ctr_lab.tools import emr
from ctr_lab.tools.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "emr_bootstrap" / "README.md"
REGION = "us-east-1"
#: Values the README's `export`/assignment lines give its shell variables, for the checks.
VARIABLES = {
    "AWS_DEFAULT_REGION": REGION,
    "CTR_LAB_BUCKET": "s3://my-ctr-lab-bucket",
    "CTR_LAB_EMAIL": "you@example.com",
    "ACCOUNT_ID": "123456789012",
    "SG": "sg-0123456789abcdef0",
    "MY_IP": "203.0.113.7",
}
#: awscli's global options that take a value (awscli/data/cli.json).
GLOBAL_WITH_VALUE = {"--region", "--query", "--output", "--profile", "--endpoint-url"}
#: Commands awscli adds on top of botocore's models, with the options the README may use
#: (awscli/customizations/s3/subcommands.py: CpCommand, MbCommand, RmCommand;
#: awscli/customizations/emr/createdefaultroles.py: CreateDefaultRoles).
CUSTOM = {
    ("s3", "cp"): {"--recursive", "--only-show-errors"},
    ("s3", "mb"): set(),
    ("s3", "rm"): {"--recursive"},
    ("emr", "create-default-roles"): set(),
}
_SESSION = botocore.session.get_session()


def _blocks(lang: str) -> List[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _expand(line: str) -> str:
    """The README's shell variables replaced by example values; an unknown one fails."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in VARIABLES, f"README uses ${name}, which no step sets: {line}"
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, line)


def _commands(program: str) -> List[List[str]]:
    """Every ``program`` command in the README's bash blocks, as argv lists."""
    found = []
    for block in _blocks("bash"):
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            # $(...) command substitutions are commands of their own
            inner = re.findall(r"\$\(([^()]*)\)", line)
            line = re.sub(r"\$\(([^()]*)\)", "SUBSTITUTED", line)
            for text in [*inner, line]:
                lexer = shlex.shlex(_expand(text), posix=True, punctuation_chars="|&;<>")
                lexer.whitespace_split = True
                words: List[str] = []
                skip_next = False
                for token in [*list(lexer), ";"]:
                    if skip_next:
                        skip_next = False
                        continue
                    if token in (">", ">>", "<"):
                        skip_next = True  # a redirection and its file
                    elif token in ("|", "||", "&&", ";", "&"):
                        if words and re.fullmatch(r"(\w+=)?" + re.escape(program), words[0]):
                            words[0] = program
                            found.append(words)
                        words = []
                    else:
                        words.append(token)
    return found


def _operation(service: str, kebab: str):
    model = _SESSION.get_service_model(service)
    names = {xform_name(name, "-"): name for name in model.operation_names}
    assert kebab in names, f"aws {service} {kebab}: no such operation in botocore's model"
    return model.operation_model(names[kebab])


def _shorthand(text: str, shape) -> Dict[str, Any]:
    """awscli's shorthand ``Key=value,Key2=a,b`` for a structure (a list member takes the
    comma-separated values that follow its key)."""
    result: Dict[str, Any] = {}
    key = None
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and name in shape.members:
            key = name
            member = shape.members[name]
            result[key] = [value] if member.type_name == "list" else value
        else:
            assert key is not None and isinstance(result[key], list), f"bad shorthand {text}"
            result[key].append(part)
    for name, value in result.items():
        result[name] = (
            _typed(value, shape.members[name])
            if not isinstance(value, list)
            else [_typed(v, shape.members[name].member) for v in value]
        )
    return result


def _typed(value: str, shape) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("structure", "map"):
        return json.loads(value) if value.lstrip().startswith("{") else _shorthand(value, shape)
    return value


def _params(words: List[str], shape) -> Tuple[Dict[str, Any], List[str]]:
    """The request parameters awscli builds from ``--option value`` words for ``shape``."""
    members = {xform_name(name, "-"): name for name in shape.members}
    params: Dict[str, Any] = {}
    queries = []
    i = 0
    while i < len(words):
        word = words[i]
        assert word.startswith("--"), f"unexpected word {word!r} in {words}"
        option = word[2:]
        values = []
        while i + 1 < len(words) and not words[i + 1].startswith("--"):
            values.append(words[i + 1])
            i += 1
        i += 1
        if word in GLOBAL_WITH_VALUE:
            assert len(values) == 1, word
            if word == "--query":
                queries.append(values[0])
            continue
        if option.startswith("no-") and option[3:] in members:
            params[members[option[3:]]] = False
            continue
        assert option in members, f"--{option} is not an option of this operation"
        member = shape.members[members[option]]
        if member.type_name == "boolean" and not values:
            params[members[option]] = True
        elif member.type_name == "list":
            if len(values) == 1 and values[0].lstrip().startswith("["):
                params[members[option]] = json.loads(values[0])
            else:
                params[members[option]] = [_typed(v, member.member) for v in values]
        else:
            assert len(values) == 1, f"--{option} takes one value, got {values}"
            params[members[option]] = _typed(values[0], member)
    return params, queries


def test_readme_aws_commands_match_botocore_models():
    commands = _commands("aws")
    assert len(commands) >= 25  # the checklist's commands, found
    validator = ParamValidator()
    seen = set()
    for words in commands:
        service, name, rest = words[1], words[2], words[3:]
        seen.add((service, name))
        if (service, name) in CUSTOM:
            for word in rest:
                if word.startswith("--"):
                    assert word in CUSTOM[(service, name)], f"aws {service} {name} {word}"
            continue
        if name == "wait":
            waiter = _SESSION.get_waiter_model(service).get_waiter(
                "".join(part.title() for part in rest[0].split("-"))
            )
            operation = _operation(service, xform_name(waiter.operation, "-"))
            rest = rest[1:]
        else:
            operation = _operation(service, name)
        params, queries = _params(rest, operation.input_shape)
        report = validator.validate(params, operation.input_shape)
        assert not report.has_errors(), f"{' '.join(words)}: {report.generate_report()}"
        for query in queries:
            jmespath.compile(query.replace("\\`", "`"))
    # the checklist's topics are all there
    for needed in [
        ("service-quotas", "get-service-quota"),
        ("budgets", "create-budget"),
        ("emr", "create-default-roles"),
        ("iam", "wait"),
        ("ec2", "describe-vpcs"),
        ("ec2", "authorize-security-group-ingress"),
        ("ec2", "revoke-security-group-ingress"),
        ("ec2", "describe-security-group-rules"),
        ("iam", "put-user-policy"),
    ]:
        assert needed in seen, needed


def test_the_checker_rejects_what_awscli_rejects():
    """The checks above can fail: a wrong option, a wrong type, a missing required member."""
    operation = _operation("service-quotas", "get-service-quota")
    with pytest.raises(AssertionError, match="--quota is not an option"):
        _params(["--service-code", "ec2", "--quota", "L-1216C47A"], operation.input_shape)
    params, _ = _params(["--service-code", "ec2"], operation.input_shape)
    assert ParamValidator().validate(params, operation.input_shape).has_errors()
    with pytest.raises(AssertionError, match="no such operation"):
        _operation("ec2", "open-port")
    budget = _operation("budgets", "create-budget")
    params, _ = _params(
        ["--account-id", "123456789012", "--budget", '{"BudgetName": 5}'], budget.input_shape
    )
    assert ParamValidator().validate(params, budget.input_shape).has_errors()


def test_readme_quota_codes_and_vcpus_are_the_presets():
    """The quota table: On-Demand = primary + core vCPUs, Spot = task vCPUs (prices.json)."""
    presets = emr.load_presets()["presets"]
    vcpu = {k: v["vcpu"] for k, v in emr.load_prices()["instances"].items()}
    text = README.read_text()
    for name, chosen in presets.items():
        groups = chosen["instance_groups"]
        need = {"ON_DEMAND": 0, "SPOT": 0}
        for spec in groups.values():
            need[spec["market"]] += vcpu[spec["instance_type"]] * int(spec["count"])
        assert f"| `{name}` | {need['ON_DEMAND']} | {need['SPOT']} |" in text
    assert "L-1216C47A" in text and "L-34B43A08" in text


def test_readme_policy_is_json_and_passes_the_roles():
    (policy,) = [json.loads(b) for b in _blocks("json") if '"Statement"' in b]
    actions = []
    for statement in policy["Statement"]:
        found = statement["Action"]
        actions += [found] if isinstance(found, str) else found
    assert "iam:PassRole" in actions and "iam:CreateRole" in actions
    passed = next(s for s in policy["Statement"] if s["Action"] == "iam:PassRole")
    defaults = emr.load_presets()["defaults"]
    for role in (defaults["service_role"], defaults["instance_profile"]):
        assert f"arn:aws:iam::*:role/{role}" in passed["Resource"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """moto's AWS with the README's bucket, and a stand-in package (no wheel build)."""
    moto = pytest.importorskip("moto")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    dist = tmp_path / "dist"
    dist.mkdir()
    files = {}
    for name in (emr.wheel_name(), emr.zip_name(), "notebooks.tar.gz"):
        files[name] = dist / name
        files[name].write_bytes(name.encode())
    sums = {emr.wheel_name(): "ab" * 32, emr.zip_name(): emr.current_zip_sha256()}
    sums["notebooks.tar.gz"] = "cd" * 32
    (dist / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()))
    made = {"dir": dist, "files": files, "sha256": sums}
    monkeypatch.setattr(emr, "default_dist_dir", lambda: dist)
    monkeypatch.setattr(emr, "build_package", lambda out_dir=None: made)
    with moto.mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="my-ctr-lab-bucket")
        yield


def test_readme_ctr_lab_commands_run_offline(offline, capsys):
    from test_emr import _Livy

    commands = _commands("ctr-lab")
    assert len(commands) >= 12
    livy = _Livy([{"id": 0, "kind": "pyspark", "state": "idle", "appId": "application_1_1"}])
    cluster_id = None
    try:
        for words in commands:
            argv = [w.replace("http://localhost:8998", livy.url) for w in words[1:]]
            if "j-XXXXXXXXXXXXX" in argv:
                assert cluster_id, f"{' '.join(words)} comes before `create` in the README"
                argv = [cluster_id if w == "j-XXXXXXXXXXXXX" else w for w in argv]
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, f"{' '.join(words)}: {err}"
            if argv[:2] == ["emr", "create"] and "--dry-run" not in argv:
                cluster_id = out.split("created ")[1].split()[0]
    finally:
        livy.close()
    assert cluster_id
    state = boto3.client("emr", region_name=REGION).describe_cluster(ClusterId=cluster_id)
    assert state["Cluster"]["Status"]["State"] == "TERMINATED"  # the checklist ends it

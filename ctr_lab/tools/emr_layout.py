"""Where a preset's Spark containers land: executors per node from YARN memory, not from cores.

YARN on EMR places containers by memory alone (the capacity scheduler's default resource
calculator counts no cores), so a node takes as many executors as its
``yarn.nodemanager.resource.memory-mb`` holds containers of ``spark.executor.memory`` plus
overhead. With Livy in cluster deploy mode the session's driver is the YARN application master:
one more container, on a core node (the On-Demand node label keeps it off Spot), which leaves
less room for executors there.

The sizes follow Spark 3.5 on YARN (``org.apache.spark.deploy.yarn.Client`` and
``YarnAllocator``): overhead ``max(0.10 * memory, 384 MiB)`` (``spark.*.memoryOverheadFactor``
0.10, ``MEMORY_OVERHEAD_MIN`` 384), and YARN rounds each request up to a multiple of
``yarn.scheduler.minimum-allocation-mb``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

from ctr_lab.errors import CtrLabError
from ctr_lab.session import memory_mb

#: Spark's ``spark.executor.memoryOverheadFactor`` / ``spark.driver.memoryOverheadFactor`` default.
OVERHEAD_FACTOR = 0.10
#: Spark's ``MEMORY_OVERHEAD_MIN`` (MiB).
OVERHEAD_MIN_MB = 384


def container_mb(memory: str, min_allocation_mb: int) -> int:
    """The YARN container Spark requests for a JVM of ``memory``, rounded as YARN rounds it."""
    heap = memory_mb(memory)
    overhead = max(int(OVERHEAD_FACTOR * heap), OVERHEAD_MIN_MB)
    step = max(int(min_allocation_mb), 1)
    return int(math.ceil((heap + overhead) / step) * step)


def layout(chosen: Dict[str, Any], prices: Dict[str, Any]) -> Dict[str, Any]:
    """Executors per node of one preset (``presets.json`` entry) on ``prices.json``'s nodes.

    Returns
    -------
    dict
        ``nodes`` (one entry per core/task node: role, type, YARN MiB, whether it holds the
        driver, executors, MiB used), ``executors``, ``executor_cores`` (their total cores),
        ``executor_mb`` and ``driver_mb`` (container sizes).

    Raises
    ------
    CtrLabError
        When a node type has no ``yarn_mb``, the driver fits on no core node, or a node cannot
        hold one executor.
    """
    spark = chosen["spark_defaults"]
    step = int(prices.get("yarn_min_allocation_mb", 1))
    executor_mb = container_mb(spark["spark.executor.memory"], step)
    driver_mb = container_mb(spark["spark.driver.memory"], step)
    cores = int(spark["spark.executor.cores"])
    nodes: List[Dict[str, Any]] = []
    driver_placed = False
    for role in ("CORE", "TASK"):
        spec = chosen["instance_groups"].get(role)
        if not spec:
            continue
        itype = spec["instance_type"]
        info = prices["instances"].get(itype, {})
        if "yarn_mb" not in info:
            raise CtrLabError(
                f"{itype} has no yarn_mb in emr_bootstrap/prices.json. Fix: add its "
                "yarn.nodemanager.resource.memory-mb from EMR's task-configuration table"
            )
        for _ in range(int(spec["count"])):
            # The driver (application master) goes to the first core node: node labels keep it
            # on On-Demand capacity, and only core nodes are On-Demand here.
            holds_driver = role == "CORE" and not driver_placed
            free = int(info["yarn_mb"]) - (driver_mb if holds_driver else 0)
            if free < 0:
                raise CtrLabError(
                    f"the driver's {driver_mb} MiB container does not fit a {itype} "
                    f"({info['yarn_mb']} MiB for YARN). Fix: lower spark.driver.memory"
                )
            driver_placed = driver_placed or holds_driver
            count = free // executor_mb
            if count == 0:
                raise CtrLabError(
                    f"a {executor_mb} MiB executor does not fit a {itype} {role.lower()} node "
                    f"({free} MiB free for YARN). Fix: lower spark.executor.memory"
                )
            nodes.append(
                {
                    "role": role,
                    "type": itype,
                    "yarn_mb": int(info["yarn_mb"]),
                    "vcpu": int(info["vcpu"]),
                    "driver": holds_driver,
                    "executors": int(count),
                    "used_mb": int(count * executor_mb + (driver_mb if holds_driver else 0)),
                }
            )
    if not driver_placed:
        raise CtrLabError("the preset has no core node for the driver. Fix: add a CORE group")
    executors = sum(n["executors"] for n in nodes)
    return {
        "nodes": nodes,
        "executors": executors,
        "executor_cores": executors * cores,
        "cores_per_executor": cores,
        "executor_mb": executor_mb,
        "driver_mb": driver_mb,
    }


def describe(plan: Dict[str, Any]) -> str:
    """One line: ``12 executors (48 cores): core 2+driver, core 2, task 2 x4``."""
    parts: List[str] = []
    for node in plan["nodes"]:
        text = f"{node['role'].lower()} {node['executors']}" + ("+driver" if node["driver"] else "")
        if parts and parts[-1].split(" x")[0] == text:
            count = int(parts[-1].split(" x")[1]) if " x" in parts[-1] else 1
            parts[-1] = f"{text} x{count + 1}"
        else:
            parts.append(text)
    return (
        f"{plan['executors']} executors ({plan['executor_cores']} cores; containers "
        f"{plan['executor_mb']} MiB, driver {plan['driver_mb']} MiB): " + ", ".join(parts)
    )

"""Experiments, not the product: loaded into the operator process only when a
benchmark is given --tweak (`python -m testenv -m tweaks`), to measure a
proposed design change before anyone makes it in operator/. Each tweak is a
BENCH_* environment variable:

  BENCH_EXECUTOR_THREADS=N  the event loop's default executor (asyncio.to_thread,
                            where every reconcile runs) gets N threads instead of
                            min(32, cpus + 4) = 6 on two cores
  BENCH_POOL_MAXSIZE=N      the operator's Kubernetes client keeps N connections
                            (urllib3's default is 4: more threads than that
                            discard and re-open TLS connections)
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

log = logging.getLogger(__name__)


@kopf.on.startup()
async def apply_tweaks(**_: Any) -> None:
    if threads := int(os.environ.get("BENCH_EXECUTOR_THREADS", "0") or 0):
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="reconcile"))
        log.warning("bench tweak: default executor with %d threads", threads)
    if pool := int(os.environ.get("BENCH_POOL_MAXSIZE", "0") or 0):
        from kubernetes import client, config
        from testenv import handlers
        from testenv.kube import Kube
        from testenv.settings import get_settings

        config.load_kube_config()
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = pool
        handlers._state["kube"] = Kube(client.ApiClient(configuration), get_settings().field_manager)
        log.warning("bench tweak: Kubernetes client pool of %d connections", pool)

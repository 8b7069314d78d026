"""What LocalStack loads from this package, through its entry points (pyproject.toml).

- `magpie-host` in `localstack.lambda.runtime_executor`: functions as host processes
  (executor.py), chosen with LAMBDA_RUNTIME_EXECUTOR=magpie-host.
- `localstack.hooks.on_infra_start` hooks, run before any service starts: the named
  workarounds of patches.py; dynalite only when MAGPIE_DYNALITE names its executable.
"""

from __future__ import annotations

import os

from localstack.runtime import hooks
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "magpie-host"

    def load(self, *args, **kwargs):
        from magpie_localstack.executor import HostRuntimeExecutor

        return HostRuntimeExecutor


@hooks.on_infra_start()
def magpie_patches() -> None:
    from magpie_localstack import patches

    patches.apply_firehose_stream_name()
    patches.apply_placeholder_arn()
    patches.apply_numbers_as_text()
    patches.apply_gateway_interface()


@hooks.on_infra_start()
def magpie_dynalite() -> None:
    dynalite = os.environ.get("MAGPIE_DYNALITE")
    if dynalite:
        from magpie_localstack import patches

        patches.apply_dynalite(dynalite)

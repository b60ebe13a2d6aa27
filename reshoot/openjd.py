"""A batch as an Open Job Description job template, for render farms (Deadline Cloud and others).

`reshoot batch TAKES.toml --emit-openjd DIR` writes DIR/reshoot-batch.template.json
(specification `jobtemplate-2023-09`) and the batch beside it as DIR/takes.toml (its paths made absolute,
since a template's file parameters must lie in its folder): one step per stage, each step after the stage before it, and a
task parameter `Take` over the batch's takes, so the farm runs each (take, stage) as a task, up to its
workers at once. A task runs `reshoot batch TAKES.toml --take TAKE --until STAGE`, which is exactly the
job `reshoot batch` runs for that take and stage (the stages it finds done it skips). Each step asks the
host for the CPUs (and, with `gpu`, the GPUs) and memory its stage declares (`batch.STAGE_RESOURCES`).

The template is checked with the specification's reference model (`openjd-model`) before it is written.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from reshoot.batch import STAGE_RESOURCES, Batch, batch_toml
from reshoot.geometry.errors import InputError
from reshoot.geometry.files import write_text_atomic

TEMPLATE_FILE = "reshoot-batch.template.json"
TAKES_FILE = "takes.toml"  # the batch, beside the template


def _reshoot_executable() -> str:
    """The `reshoot` the farm should run: the one beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "reshoot"
    return str(beside) if beside.is_file() else (shutil.which("reshoot") or "reshoot")


def openjd_template(batch: Batch, until: str | None = None, gpu: bool = False) -> dict:
    """The job template of `batch` (see the module docstring) as a dict, to be written beside
    `TAKES_FILE` (a PATH parameter's default must lie in the template's folder)."""
    from reshoot.pipeline import ORDER

    last = until or batch.until
    steps = []
    for index, stage in enumerate(ORDER[: ORDER.index(last) + 1]):
        cpus, gpus, memory = STAGE_RESOURCES[stage]
        amounts = [
            {"name": "amount.worker.vcpu", "min": cpus},
            {"name": "amount.worker.memory", "min": memory * 1024},
        ]
        if gpu and gpus:
            amounts.append({"name": "amount.worker.gpu", "min": gpus})
        step: dict = {
            "name": stage,
            "parameterSpace": {
                "taskParameterDefinitions": [{"name": "Take", "type": "STRING", "range": [t.name for t in batch.takes]}]
            },
            "hostRequirements": {"amounts": amounts},
            "script": {
                "actions": {
                    "onRun": {
                        "command": "{{Param.Reshoot}}",
                        "args": ["batch", "{{Param.Takes}}", "--take", "{{Task.Param.Take}}", "--until", stage],
                    }
                }
            },
        }
        if index:
            step["dependencies"] = [{"dependsOn": ORDER[index - 1]}]
        steps.append(step)
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": f"reshoot batch {batch.path.stem}",
        "parameterDefinitions": [
            {"name": "Reshoot", "type": "STRING", "default": _reshoot_executable()},
            {"name": "Takes", "type": "PATH", "objectType": "FILE", "dataFlow": "IN", "default": TAKES_FILE},
        ],
        "steps": steps,
    }


def validate_template(template: dict) -> None:
    """Check `template` with openjd-model: it decodes as a job template and makes a job.

    Raises:
        InputError: openjd-model is missing (`pip install 'reshoot[openjd]'`) or refuses the template.
    """
    try:
        from openjd.model import create_job, decode_job_template
    except ImportError:
        raise InputError(
            "--emit-openjd checks the template with openjd-model: pip install 'reshoot[openjd]'."
        ) from None
    try:
        create_job(job_template=decode_job_template(template=template), job_parameter_values={})
    except Exception as error:  # noqa: BLE001 (the model's own validation errors, reported as they are)
        raise InputError(f"the OpenJD template does not validate: {error}") from None


def write_openjd(batch: Batch, folder: Path, until: str | None = None, gpu: bool = False) -> Path:
    """Validate the template and write it into `folder` with the batch beside it (`TAKES_FILE`, its paths
    made absolute); the template's path."""
    template = openjd_template(batch, until, gpu)
    validate_template(template)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / TAKES_FILE, batch_toml(batch))
    write_text_atomic(folder / TEMPLATE_FILE, json.dumps(template, indent=2) + "\n")
    return folder / TEMPLATE_FILE

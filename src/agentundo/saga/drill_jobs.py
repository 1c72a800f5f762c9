"""Drill jobs: the scenarios of a directory (or of the configuration), each with its workflow.

``agentundo drill DIR`` and ``agentundo drill`` without a workflow run one drill per
scenario file found (a file with ``kind: scenario`` or the scenario's shape; every other
file is passed over). A scenario names its workflow by id (``workflow:``); the workflow
file is the one whose ``workflow:`` is that id, looked for

1. in the scenario's own directory (and below it), then
2. in each ``--workflows`` directory (the ``workflows`` configuration key), in order.

The first place with a match wins; two matching files in one place, or none anywhere,
is an input error at the scenario's ``workflow:`` line. It prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentundo.errors import InputError, Position
from agentundo.load.files import LoadedFile, scan_paths


@dataclass(frozen=True, slots=True)
class Job:
    """One drill to run: a scenario file and the workflow file it names."""

    scenario: str  # the scenario file
    name: str  # the scenario's name (``scenario:``)
    workflow_id: str
    workflow: str | None = None  # the workflow file (None: errors say why)
    errors: list[InputError] = field(default_factory=list)


@dataclass(slots=True)
class Jobs:
    jobs: list[Job]
    errors: list[InputError]  # files that could not be read or are not valid


def find_jobs(paths: Sequence[str], workflow_dirs: Sequence[str] = ()) -> Jobs:
    """The drills of the scenario files and directories ``paths``, in the order found."""
    scan = scan_paths(paths)
    cache: dict[str, list[LoadedFile]] = {}

    def workflows_in(directory: str) -> list[LoadedFile]:
        key = os.path.realpath(directory)
        if key not in cache:
            found = scan_paths([directory]).files if Path(directory).is_dir() else []
            cache[key] = [f for f in found if f.kind == "workflow"]
        return cache[key]

    jobs: list[Job] = []
    for file in scan.files:
        if file.kind != "scenario":
            continue
        name = str(file.model.scenario)
        wanted = file.model.workflow
        if wanted is None:
            error = InputError(
                file.position(),
                "this scenario does not name its workflow, so it cannot be run from a "
                "directory or the configuration",
                "add 'workflow: ID' (the id of the workflow it drills)",
            )
            jobs.append(Job(file.path, name, "", errors=[error]))
            continue
        places = [str(Path(file.path).parent), *workflow_dirs]
        jobs.append(_match(file, name, str(wanted), places, workflows_in))
    errors = list(scan.errors)
    if not jobs and not errors:
        errors.append(
            InputError(
                Position(", ".join(str(p) for p in paths)),
                "no scenario files found",
                "a scenario has 'kind: scenario', or 'version: v1', 'scenario:' and 'faults:'",
            )
        )
    return Jobs(jobs, errors)


def _match(
    file: LoadedFile,
    name: str,
    wanted: str,
    places: list[str],
    workflows_in: Callable[[str], list[LoadedFile]],
) -> Job:
    for place in places:
        matches = [w for w in workflows_in(place) if w.model.workflow == wanted]
        if len(matches) == 1:
            return Job(file.path, name, wanted, workflow=matches[0].path)
        if len(matches) > 1:
            both = ", ".join(m.path for m in matches)
            error = InputError(
                file.position("workflow"),
                f"workflow '{wanted}' is defined by more than one file in {place}: {both}",
                "keep one workflow file per id",
            )
            return Job(file.path, name, wanted, errors=[error])
    error = InputError(
        file.position("workflow"),
        f"no workflow file with 'workflow: {wanted}' next to this scenario or in the "
        f"workflow directories ({', '.join(places[1:]) or 'none given'})",
        "give --workflows DIR or the 'workflows' key of [drill] in the configuration",
    )
    return Job(file.path, name, wanted, errors=[error])

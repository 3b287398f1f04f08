"""The accept / reopen workflow from Dagster: the `findings_review` job, driven by its run config.

In the launchpad (or `trueup run`-like GraphQL launches):

    ops:
      record_decisions:
        config: {accept: [<finding id>, ...], reopen: [], reason: "why", decided_by: "who"}

It is a warehouse writer like the other jobs (it queues behind a running one) and records the
same rows `trueup findings accept` does.
"""

import dagster as dg
from pydantic import Field

from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE

JOB = "findings_review"


class DecisionConfig(dg.Config):
    """Which findings to accept or reopen, and why (recorded with each decision)."""

    accept: list[str] = Field(default=[], description="Finding ids to accept as they are.")
    reopen: list[str] = Field(default=[], description="Finding ids to reopen (undo an accept).")
    reason: str = Field(description="Why: recorded with every decision of this run.")
    decided_by: str = Field(
        default="", description="Who decides (default: the run's launcher, else 'dagster')."
    )


@dg.op(
    required_resource_keys={"warehouse_writer"}, description="Record accept / reopen decisions on findings."
)
def record_decisions(context: dg.OpExecutionContext, config: DecisionConfig) -> dg.Output[int]:
    from orchestration.findings import decide

    who = config.decided_by or context.run.tags.get("dagster/user") or "dagster"
    recorded = 0
    for action, ids in (("accept", config.accept), ("reopen", config.reopen)):
        if ids:
            # the warehouse_writer resource holds the lock for the whole run
            done = decide(action, ids, config.reason, decided_by=who, origin="dagster", hold_lock=False)
            context.log.info(f"{action}: {', '.join(done.finding_ids)} (published copy: {done.published})")
            recorded += len(done.finding_ids)
    if not recorded:
        raise dg.Failure("name finding ids under `accept` or `reopen` in the run config")
    return dg.Output(recorded, metadata={"decisions": recorded, "reason": config.reason, "by": who})


@dg.job(
    name=JOB,
    description="Accept or reopen findings (run config: accept, reopen, reason, decided_by).",
    executor_def=dg.in_process_executor,
    tags={WRITER_TAG: WRITER_TAG_VALUE},
)
def findings_review() -> None:
    record_decisions()

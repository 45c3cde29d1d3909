"""The arms of `inferarena agents`, one enum: what each run compares, by name, everywhere (config, jobs,
findings). A declaration only: the kinds' findings import it without importing any driver.

    baseline            no gate
    dropout             no gate, the communication graph the development phase pruned
    reject-only         the gate with no retries: a flawed message is removed at once
    rectify-or-reject   the gate with `retries` rectify attempts, then removal (AgentDropoutV2)
"""

from __future__ import annotations

from enum import StrEnum


class Arm(StrEnum):
    BASELINE = "baseline"
    DROPOUT = "dropout"
    REJECT_ONLY = "reject-only"
    RECTIFY_OR_REJECT = "rectify-or-reject"

    @property
    def gated(self) -> bool:
        """The gate reviews every message before the others read it."""
        return self in (Arm.REJECT_ONLY, Arm.RECTIFY_OR_REJECT)

    @property
    def rectifies(self) -> bool:
        """A flawed message goes back to its agent with feedback before it is removed."""
        return self is Arm.RECTIFY_OR_REJECT

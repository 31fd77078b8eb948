"""The simulations API's bodies (the OpenAPI document is generated from them)."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from verify_service.review.reasons import REASONS


# The decision's reason codes, as the catalogue has them (so the document lists them).
ReasonCode = enum.Enum("ReasonCode", {code: code for code in REASONS}, type=str)  # type: ignore[misc]


class SimulationIn(BaseModel):
    """The outcome the simulated call should end with."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["passed", "failed", "inconclusive", "no_show"] = Field(
        description="How the simulated call ends. `failed` is confirmed at once by the simulated lead.")
    reasons: list[ReasonCode] | None = Field(  # type: ignore[valid-type]
        None, max_length=len(REASONS),
        description="Reason codes of the decision. `failed` and `inconclusive` take at least one (default `id_mismatch` and `poor_video`), "
                    "`no_show` may take some, `passed` none.")


class SimulationOut(BaseModel):
    call_session_id: str = Field(description="The simulated call (its events carry it).")
    outcome: Literal["passed", "failed", "inconclusive", "no_show"]
    restrictions_version: int = Field(description="The account's restrictions version once the call is decided.")

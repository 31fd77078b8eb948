"""Schemas of the client-check and support-matrix API (docs/architecture.md, 'Browser and system support')."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool


class BrandIn(BaseModel):
    brand: str = Field(max_length=100)
    version: str = Field(max_length=40)


class ClientHintsIn(BaseModel):
    """The shape ``navigator.userAgentData.getHighEntropyValues()`` returns (unknown keys ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    brands: list[BrandIn] = Field(default_factory=list, max_length=10)
    fullVersionList: list[BrandIn] = Field(default_factory=list, max_length=10)  # noqa: N815 (the browser's name)
    mobile: StrictBool | None = None
    platform: str | None = Field(None, max_length=50)
    platformVersion: str | None = Field(None, max_length=50)  # noqa: N815
    touchMac: StrictBool = Field(False, description="The page's iPadOS test: a Mac user agent with a touch screen.")  # noqa: N815


class ClientCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_agent: str = Field(max_length=2048, description="The freelancer's User-Agent string.")
    client_hints: ClientHintsIn | None = None


class ReasonOut(BaseModel):
    code: str
    message: str


class LinkOut(BaseModel):
    label: str
    url: str


class BrowserOut(BaseModel):
    family: Literal["chrome", "edge", "firefox", "safari", "ie", "other"]
    major: int | None
    supported: bool | None
    supported_majors: list[int]


class OsOut(BaseModel):
    family: Literal["windows", "macos", "chromeos", "ubuntu", "debian", "linux", "android", "ios", "other"]
    version: str | None
    supported: bool | None = Field(description="null when the version cannot be known (frozen user agent, no hint)")


class VerdictOut(BaseModel):
    verdict: Literal["supported", "unsupported", "unverified", "use_mobile_app", "plugin_required"]
    browser: BrowserOut
    os: OsOut
    mobile: bool
    reasons: list[ReasonOut]
    links: list[LinkOut] = Field(default_factory=list, description="Where to get the Meet app or the IE plugin.")


class ProductSupportOut(BaseModel):
    name: str
    supported_majors: list[str] = Field(description="Newest first: the current major and the two before it.")


class SupportMatrixOut(BaseModel):
    generated_at: AwareDatetime = Field(description="When the release data was collected.")
    browsers: dict[str, ProductSupportOut]
    systems: dict[str, ProductSupportOut]
    mobile: str
    internet_explorer: str

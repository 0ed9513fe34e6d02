"""Request bodies for enrolling several people from one previewed video."""

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PEOPLE = 50


class PersonToEnroll(BaseModel):
    """One track of the preview, and who it is: an existing subject, or a new one made from these fields."""

    model_config = ConfigDict(extra="forbid")

    track_id: int = Field(ge=0, description="the preview's track (see the preview job's result)")
    subject_id: str | None = Field(
        None, min_length=1, max_length=36, description="add the walk to this existing subject; else a new subject"
    )
    name: str = Field("", max_length=200, description="the new subject's display name", examples=["Jane Doe"])
    external_id: str | None = Field(
        None, min_length=1, max_length=200, description="the new subject's own identifier (unique)"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="the new subject's free-form attributes")

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if self.subject_id is not None and (self.name or self.external_id is not None or self.metadata):
            raise ValueError("give subject_id for an existing subject, or name/external_id for a new one, not both")
        return self


class GroupEnrollment(BaseModel):
    """Enroll any of a preview's tracks as people, in one job, without processing the video again."""

    model_config = ConfigDict(extra="forbid")

    preview_job_id: str = Field(min_length=1, max_length=36, description="a succeeded preview job (POST /v1/previews)")
    people: list[PersonToEnroll] = Field(
        min_length=1, max_length=MAX_PEOPLE, description="the tracks to enroll, each once, and who each is"
    )

    @model_validator(mode="after")
    def _each_track_once(self) -> Self:
        tracks = [p.track_id for p in self.people]
        if len(set(tracks)) != len(tracks):
            raise ValueError("each track may be enrolled once")
        external = [p.external_id for p in self.people if p.external_id is not None]
        if len(set(external)) != len(external):
            raise ValueError("two new subjects cannot share an external_id")
        return self

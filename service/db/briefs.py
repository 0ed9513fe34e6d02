"""Rows as answers name them (a subject in an identification, an event, a webhook body).

Subjects are looked up when the answer is shown, so one deleted since shows as null.
"""

from sqlalchemy.orm import Session

from models.matching import Candidate
from service.answers import CandidateAnswer, SubjectBrief
from service.db.tables import Subject


def subject_brief(session: Session, subject_id: str | None) -> SubjectBrief | None:
    """The subject's id, external id and name, or None when there is no such subject (any more)."""
    subject = session.get(Subject, subject_id) if subject_id else None
    if subject is None:
        return None
    return SubjectBrief(id=subject.id, external_id=subject.external_id, name=subject.name)


def candidate_answer(session: Session, candidate: Candidate) -> CandidateAnswer:
    return CandidateAnswer(subject=subject_brief(session, candidate.subject_id), **candidate.listing())

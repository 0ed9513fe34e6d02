"""One envelope for every list the API answers: ``{items, total, limit, offset}``, with both honoured.

A client (the web console, the CLI, a script) pages every list the same way; ``total`` counts the
rows matching the filters over all pages, so "page 3 of 7" needs no second request.
"""

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

Item = TypeVar("Item")
Row = TypeVar("Row")

MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="the most rows to return")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip (the rows before this page)")]


def _generic_description(schema: JsonDict) -> None:
    """Describe every ``Page[X]`` by ``Page``'s docstring: pydantic leaves a parametrized model's ``__doc__`` unset."""
    schema.setdefault("description", inspect.cleandoc(Page.__doc__ or ""))


class Page(BaseModel, Generic[Item]):
    """One page of a list, and how many rows the whole list has; the next page starts at offset + limit."""

    model_config = ConfigDict(json_schema_extra=_generic_description)

    items: list[Item] = Field(description="this page's rows, in the list's order")
    total: int = Field(description="rows matching the filters, over all pages")
    limit: int = Field(description="the most rows a page holds (the request's limit)")
    offset: int = Field(description="rows skipped before this page (the request's offset)")


def page_of(
    session: Session,
    query: Select[Any],
    order_by: Sequence[Any],
    limit: int,
    offset: int,
    out: Callable[[Sequence[Row]], list[Item]],
) -> Page[Item]:
    """Count ``query``'s rows, fetch one page of them in ``order_by`` order and turn it into items.

    ``out`` takes the whole page at once, so that what an item needs from other tables can be read
    in one statement for the page rather than one per row.
    """
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*order_by).limit(limit).offset(offset)).all()
    return Page[Any](items=out(rows), total=int(total), limit=limit, offset=offset)

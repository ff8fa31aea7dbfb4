from typing import Annotated

from fastapi import Query

from app.schemas.common import MAX_LIMIT

API_PREFIX = "/api/v1"

# Page parameters of every list endpoint: `?limit=` (default 50, max 500) `&offset=`.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]

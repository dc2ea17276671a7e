"""Users: forgetting one (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, ServiceDep
from api.errors import error_responses
from api.routes.recommendations import UserPath
from api.schemas import UserForgotten
from recsys.events.forget import forget_user

router = APIRouter(prefix="/v1", tags=["users"])


@router.delete("/users/{user_id}", response_model=UserForgotten, responses=error_responses(401, 403, 422, 503))
def forget(user_id: UserPath, _: AdminDep, service: ServiceDep) -> UserForgotten:
    """Forget a user: session, candidates and history (every version) and waiting log entries go now;
    their rows leave the lake at the next `recsys ingest`."""
    result = forget_user(service.store, user_id)
    return UserForgotten(user_id=user_id, log_entries_deleted=result.log_entries_deleted,
                         feature_rows_deleted=result.feature_rows_deleted,
                         lake="removed by the next ingest (files holding the user are rewritten)")

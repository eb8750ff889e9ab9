"""Read API for clusters: a page of clusters newest or largest first, and one cluster with its items."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from services.api.auth import require_api_key
from services.api.errors import error_responses
from services.api.paging import Limit, Offset
from services.api.resources import Resources
from shared.clusters import (
    ClusterOrder,
    ClusterView,
    count_clusters,
    list_cluster_ids,
    read_cluster_items,
    read_clusters,
)
from shared.models import FeedbackItem

router = APIRouter(
    tags=["read"], dependencies=[Depends(require_api_key)], responses=error_responses(401, 422, 503)
)
MAX_ITEMS = 500


class ClusterPage(BaseModel):
    clusters: list[ClusterView]
    total: int


class ClusterDetail(ClusterView):
    items: list[FeedbackItem]


@router.get("/clusters", response_model=ClusterPage)
async def list_clusters(
    resources: Resources, order: ClusterOrder = "newest", limit: Limit = 50, offset: Offset = 0
) -> ClusterPage:
    ids = await list_cluster_ids(resources.redis, resources.keys, order, offset, limit)
    clusters = await read_clusters(resources.redis, resources.keys, ids)
    return ClusterPage(clusters=clusters, total=await count_clusters(resources.redis, resources.keys))


@router.get("/clusters/{cluster_id}", response_model=ClusterDetail, responses=error_responses(404))
async def get_cluster(
    resources: Resources, cluster_id: str, item_limit: int = Query(100, ge=1, le=MAX_ITEMS)
) -> ClusterDetail:
    found = await read_clusters(resources.redis, resources.keys, [cluster_id])
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cluster {cluster_id}")
    items = await read_cluster_items(resources.redis, resources.keys, cluster_id, item_limit)
    return ClusterDetail(**found[0].model_dump(), items=items)

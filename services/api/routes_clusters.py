"""Read API for clusters: a page of clusters newest or largest first, and one cluster with its items."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel

from services.api.auth import require_api_key
from services.api.resources import app_resources
from shared.clusters import (
    ClusterOrder,
    ClusterView,
    count_clusters,
    list_cluster_ids,
    read_cluster_items,
    read_clusters,
)
from shared.models import FeedbackItem

router = APIRouter(tags=["read"], dependencies=[Depends(require_api_key)])
MAX_ITEMS = 500


class ClusterPage(BaseModel):
    clusters: list[ClusterView]
    total: int


class ClusterDetail(ClusterView):
    items: list[FeedbackItem]


@router.get("/clusters", response_model=ClusterPage)
async def list_clusters(
    request: Request,
    order: ClusterOrder = "newest",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> ClusterPage:
    resources = app_resources(request)
    ids = await list_cluster_ids(resources.redis, resources.keys, order, offset, limit)
    clusters = await read_clusters(resources.redis, resources.keys, ids)
    return ClusterPage(clusters=clusters, total=await count_clusters(resources.redis, resources.keys))


@router.get("/clusters/{cluster_id}", response_model=ClusterDetail)
async def get_cluster(
    request: Request, cluster_id: str, item_limit: int = Query(100, ge=1, le=MAX_ITEMS)
) -> ClusterDetail:
    resources = app_resources(request)
    found = await read_clusters(resources.redis, resources.keys, [cluster_id])
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cluster {cluster_id}")
    items = await read_cluster_items(resources.redis, resources.keys, cluster_id, item_limit)
    return ClusterDetail(**found[0].model_dump(), items=items)

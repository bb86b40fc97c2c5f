"""The job store (``storage.jobs``) in the ``jobs`` collection, outside any transaction
(a job belongs to no unit of work). A claim is one ``find_one_and_update`` whose filter
asks for a lease that has run out, so of two processes claiming at once one gets the
document and the other finds the lease taken; a save matches on the holder, so a process
whose job was taken over or removed learns it from ``matched_count``. Expired jobs are
removed by ``sweep`` (not a TTL index: what a job made must be removed with it)."""

from __future__ import annotations

import time

from bson import Binary
from pymongo import ASCENDING, IndexModel, ReturnDocument

from fhir_server.storage.jobs import RUNNABLE, Job

__all__ = ["MongoJobStore"]


def _job(doc: dict) -> Job:
    return Job(doc["_id"], doc["kind"], doc["owner"], doc["status"], bytes(doc["request"]), bytes(doc["state"]),
               doc["created"], doc.get("expires"), doc.get("holder"), doc.get("lease_until", 0.0))


class MongoJobStore:
    def __init__(self, collection):
        self._jobs = collection
        self._jobs.create_indexes([
            IndexModel([("kind", ASCENDING), ("status", ASCENDING), ("created", ASCENDING)], name="runnable"),
            IndexModel([("expires", ASCENDING)], name="expires"),
        ])

    def add(self, job: Job) -> None:
        self._jobs.insert_one({
            "_id": job.id, "kind": job.kind, "owner": job.owner, "status": job.status,
            "request": Binary(job.request), "state": Binary(job.state), "created": job.created,
            "expires": job.expires, "holder": job.holder, "lease_until": job.lease_until,
        })

    def get(self, job_id: str) -> Job | None:
        doc = self._jobs.find_one({"_id": job_id})
        return _job(doc) if doc else None

    def claim(self, kind: str, worker: str, lease_seconds: float) -> Job | None:
        now = time.time()
        doc = self._jobs.find_one_and_update(
            {"kind": kind, "status": {"$in": list(RUNNABLE)}, "lease_until": {"$lt": now}},
            {"$set": {"holder": worker, "lease_until": now + lease_seconds, "status": "running"}},
            sort=[("created", ASCENDING), ("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return _job(doc) if doc else None

    def save(self, job_id: str, worker: str, *, state: bytes, status: str, lease_seconds: float,
             expires: float | None = None) -> bool:
        update = {"state": Binary(state), "status": status,
                  "lease_until": time.time() + lease_seconds if lease_seconds > 0 else 0.0}
        if expires is not None:
            update["expires"] = expires
        return self._jobs.update_one({"_id": job_id, "holder": worker}, {"$set": update}).matched_count == 1

    def remove(self, job_id: str) -> bool:
        return self._jobs.delete_one({"_id": job_id}).deleted_count == 1

    def sweep(self, now: float) -> list[str]:
        ids = [d["_id"] for d in self._jobs.find({"expires": {"$lt": now}}, {"_id": 1})]
        # another process may sweep at the same time: each id is reported by the one that removed it
        return [i for i in ids if self._jobs.delete_one({"_id": i, "expires": {"$lt": now}}).deleted_count == 1]

    def close(self) -> None:
        pass

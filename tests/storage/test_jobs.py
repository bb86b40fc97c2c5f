"""The job store every store offers (``Store.jobs``): jobs survive the process, one worker
at a time holds a job's lease, a lease that runs out passes to another worker, and a
worker whose job was taken over or removed learns it when it saves."""

import multiprocessing
import threading
import time
import uuid

from fhir_server.storage import Job, open_store


def _job(kind: str = "export", created: float | None = None, **fields) -> Job:
    return Job(id=uuid.uuid4().hex, kind=kind, owner="role|client", status="queued", request=b'{"a": 1}',
               state=b"{}", created=time.time() if created is None else created, **fields)


def test_a_job_is_added_read_and_removed(store):
    job = _job(expires=None)
    store.jobs.add(job)
    assert store.jobs.get(job.id) == job
    assert store.jobs.remove(job.id) is True
    assert store.jobs.get(job.id) is None
    assert store.jobs.remove(job.id) is False


def test_claims_take_the_oldest_free_job_of_their_kind_once(store):
    older, newer, other = _job(created=1000.0), _job(created=2000.0), _job(kind="other", created=10.0)
    for job in (newer, older, other):
        store.jobs.add(job)
    first = store.jobs.claim("export", "w1", 30)
    assert (first.id, first.holder, first.status) == (older.id, "w1", "running")
    assert first.lease_until > time.time() + 20
    assert store.jobs.claim("export", "w2", 30).id == newer.id
    assert store.jobs.claim("export", "w3", 30) is None  # both are held
    assert store.jobs.get(older.id).holder == "w1"


def test_a_save_renews_the_lease_and_only_the_holder_may_save(store):
    job = _job()
    store.jobs.add(job)
    store.jobs.claim("export", "w1", 30)
    assert store.jobs.save(job.id, "w1", state=b'{"done": 5}', status="running", lease_seconds=30) is True
    assert store.jobs.save(job.id, "w2", state=b'{"done": 9}', status="running", lease_seconds=30) is False
    saved = store.jobs.get(job.id)
    assert (saved.state, saved.status, saved.holder) == (b'{"done": 5}', "running", "w1")
    assert store.jobs.save(job.id, "w1", state=b"{}", status="completed", lease_seconds=0, expires=123.0)
    finished = store.jobs.get(job.id)
    assert (finished.status, finished.expires) == ("completed", 123.0)
    assert store.jobs.claim("export", "w2", 30) is None  # a finished job is nobody's work


def test_a_lease_that_runs_out_passes_to_another_worker_and_the_old_holder_loses_it(store):
    job = _job()
    store.jobs.add(job)
    store.jobs.claim("export", "dead", 0.3)
    assert store.jobs.claim("export", "w2", 30) is None
    time.sleep(0.4)
    taken = store.jobs.claim("export", "w2", 30)
    assert (taken.id, taken.holder) == (job.id, "w2")
    assert store.jobs.save(job.id, "dead", state=b"{}", status="running", lease_seconds=30) is False


def test_a_released_lease_is_claimed_at_once(store):
    job = _job()
    store.jobs.add(job)
    store.jobs.claim("export", "w1", 300)
    assert store.jobs.save(job.id, "w1", state=b'{"at": 3}', status="running", lease_seconds=0)
    again = store.jobs.claim("export", "w2", 30)
    assert (again.holder, again.state) == ("w2", b'{"at": 3}')


def test_a_removed_job_cannot_be_saved(store):
    job = _job()
    store.jobs.add(job)
    store.jobs.claim("export", "w1", 30)
    store.jobs.remove(job.id)
    assert store.jobs.save(job.id, "w1", state=b"{}", status="running", lease_seconds=30) is False


def test_sweep_removes_expired_jobs_only(store):
    expired, later, running = _job(expires=time.time() - 1), _job(expires=time.time() + 3600), _job()
    for job in (expired, later, running):
        store.jobs.add(job)
    assert store.jobs.sweep(time.time()) == [expired.id]
    assert store.jobs.get(expired.id) is None
    assert store.jobs.get(later.id) is not None and store.jobs.get(running.id) is not None
    assert store.jobs.sweep(time.time()) == []


def test_of_threads_claiming_at_once_each_job_goes_to_one(store):
    jobs = [_job(created=float(i)) for i in range(12)]
    for job in jobs:
        store.jobs.add(job)
    won: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim(worker: str) -> None:
        while (job := store.jobs.claim("export", worker, 60)) is not None:
            with lock:
                won.append((job.id, worker))

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for j, _ in won) == sorted(j.id for j in jobs)


def _claim_all(url: str, worker: str, start, results) -> None:
    store = open_store(url)
    start.wait()
    claimed = []
    while (job := store.jobs.claim("export", worker, 60)) is not None:
        claimed.append(job.id)
    results.put(claimed)
    store.close()


def test_two_processes_on_one_sqlite_database_never_claim_one_job_twice(tmp_path):
    url = f"sqlite://{tmp_path / 'evi.db'}"
    store = open_store(url)
    jobs = [_job(created=float(i)) for i in range(60)]
    for job in jobs:
        store.jobs.add(job)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_claim_all, args=(url, f"p{i}", start, results)) for i in range(2)]
    for p in processes:
        p.start()
    start.set()
    claimed = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    everything = claimed[0] + claimed[1]
    assert sorted(everything) == sorted(j.id for j in jobs)  # every job once, none twice
    store.close()


def test_jobs_survive_reopening_a_sqlite_database(tmp_path):
    url = f"sqlite://{tmp_path / 'evi.db'}"
    first = open_store(url)
    job = _job()
    first.jobs.add(job)
    first.jobs.claim("export", "w1", 30)
    first.jobs.save(job.id, "w1", state=b'{"cursor": "p-17"}', status="running", lease_seconds=30)
    first.close()
    second = open_store(url)
    kept = second.jobs.get(job.id)
    assert (kept.state, kept.holder, kept.status) == (b'{"cursor": "p-17"}', "w1", "running")
    second.close()

"""The replay cache every store offers (``Store.replay``): a key is taken once within
its lifetime, by one of any number of threads or processes offering it at once."""

import multiprocessing
import threading
import time
import uuid

from fhir_server.storage import open_store


def test_a_key_is_taken_once_and_again_after_it_expires(store):
    key = f"jti|client|{uuid.uuid4().hex}"
    assert store.replay.once(key, 0.5) is True
    assert store.replay.once(key, 0.5) is False
    assert store.replay.once(f"{key}-other", 0.5) is True  # keys do not collide
    time.sleep(0.6)
    assert store.replay.once(key, 30) is True  # the earlier use expired: it may be taken again
    assert store.replay.once(key, 30) is False


def test_of_threads_offering_one_key_at_once_exactly_one_wins(store):
    keys = [uuid.uuid4().hex for _ in range(20)]
    wins: list[str] = []
    lock = threading.Lock()

    def offer():
        for key in keys:
            if store.replay.once(key, 60):
                with lock:
                    wins.append(key)

    threads = [threading.Thread(target=offer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == sorted(keys)


def _offer_all(url: str, keys: list[str], start, results) -> None:
    store = open_store(url)
    start.wait()
    results.put([k for k in keys if store.replay.once(k, 60)])
    store.close()


def test_two_processes_on_one_sqlite_database_never_both_take_a_key(tmp_path):
    url = f"sqlite://{tmp_path / 'evi.db'}"
    open_store(url).close()  # the schema, before the race
    keys = [uuid.uuid4().hex for _ in range(200)]
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_offer_all, args=(url, keys, start, results)) for _ in range(2)]
    for p in processes:
        p.start()
    start.set()
    won = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert sorted(won[0] + won[1]) == sorted(keys)  # every key taken, none twice
    third = open_store(url)
    try:
        assert third.replay.once(keys[0], 60) is False  # and a third store sees them too
    finally:
        third.close()

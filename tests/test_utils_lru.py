"""skderm._utils.lru: bounded by size, least recently used dropped first, counted, thread-safe."""

import threading

import numpy as np

from skderm._utils.lru import LRUCache


def _array(n: int) -> np.ndarray:
    return np.zeros(n, np.uint8)


def test_the_least_recently_used_entries_go_first_once_the_bound_is_passed():
    cache = LRUCache(30)
    for key in "abc":
        cache.put(key, _array(10))
    assert cache.get("a") is not None  # "a" is now the most recent: "b" goes next
    cache.put("d", _array(10))
    assert cache.get("b") is None
    assert [cache.get(k) is not None for k in "acd"] == [True, True, True]
    info = cache.info()
    assert (info.currsize, info.size, info.maxsize) == (3, 30, 30)


def test_hits_and_misses_are_counted_and_cleared():
    cache = LRUCache(100)
    cache.put("a", _array(1))
    cache.get("a")
    cache.get("a")
    cache.get("b")
    cache.count_miss()
    assert cache.info()[:2] == (2, 2)
    cache.clear()
    assert cache.info()[:4] == (0, 0, 0, 0) and cache.get("a") is None


def test_a_value_larger_than_the_bound_is_not_stored_and_lowering_it_trims():
    cache = LRUCache(10)
    cache.put("big", _array(11))
    assert len(cache) == 0
    cache.put("a", _array(5))
    cache.put("b", _array(5))
    cache.maxsize = 5
    assert cache.get("a") is None and cache.get("b") is not None
    cache.maxsize = 0
    assert len(cache) == 0 and cache.info().size == 0


def test_replacing_a_key_keeps_its_size_right():
    cache = LRUCache(100)
    cache.put("a", _array(40))
    cache.put("a", _array(10))
    assert cache.info().size == 10 and len(cache) == 1


def test_sizeof_can_count_entries():
    cache = LRUCache(2, sizeof=lambda value: 1)
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") is None and cache.get("c") == "C"


def test_threads_keep_size_and_counters_consistent():
    cache = LRUCache(500)

    def work(seed: int) -> None:
        for i in range(2000):
            key = (seed * 7 + i) % 97
            if cache.get(key) is None:
                cache.put(key, _array(1 + key % 13))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info = cache.info()
    assert info.hits + info.misses == 8 * 2000
    assert info.size <= 500
    assert info.size == sum(1 + key % 13 for key in range(97) if key in cache._data)

"""The ring: since is exclusive, overwritten samples are reported as dropped, memory is preallocated."""
from memsoak.profiler.ring import SampleRing

FIELDS = ("seq", "t_mono", "value")


def make(capacity: int) -> SampleRing:
    return SampleRing(FIELDS, frozenset({"t_mono"}), capacity)


def test_since_is_exclusive_and_types_round_trip() -> None:
    ring = make(10)
    for i in range(5):
        ring.append([None, i + 0.5, i * 1000 if i != 2 else None])
    answer = ring.since(2, 100)
    assert [s["seq"] for s in answer["samples"]] == [3, 4, 5]
    assert answer["samples"][0] == {"seq": 3, "t_mono": 2.5, "value": None}
    assert isinstance(answer["samples"][1]["value"], int) and answer["samples"][1]["value"] == 3000
    assert answer["last_seq"] == 5 and answer["first_seq"] == 1 and answer["dropped"] == 0


def test_overwritten_samples_are_counted_as_dropped() -> None:
    ring = make(4)
    for i in range(10):
        ring.append([None, float(i), i])
    answer = ring.since(3, 100)
    assert [s["seq"] for s in answer["samples"]] == [7, 8, 9, 10]
    assert answer["first_seq"] == 7 and answer["dropped"] == 3  # seqs 4, 5, 6 were lost
    assert ring.since(10, 100) == {"samples": [], "last_seq": 10, "first_seq": 7, "dropped": 0}


def test_limit_returns_the_oldest_first_so_a_reader_can_page() -> None:
    ring = make(100)
    for i in range(20):
        ring.append([None, float(i), i])
    page = ring.since(0, 5)["samples"]
    assert [s["seq"] for s in page] == [1, 2, 3, 4, 5]
    assert [s["seq"] for s in ring.since(page[-1]["seq"], 5)["samples"]] == [6, 7, 8, 9, 10]


def test_memory_is_allocated_once() -> None:
    ring = make(1000)
    before = ring.nbytes
    for i in range(5000):
        ring.append([None, float(i), i])
    assert ring.nbytes == before == 1000 * len(FIELDS) * 8
    assert ring.latest()["seq"] == 5000

"""The replay's partitioner puts every key where the producer's does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kafka.default_partitioner import murmur2, partition_of


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_is_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.text(max_size=60), st.integers(min_value=1, max_value=64))
def test_a_customer_goes_to_the_producers_partition(customer_id: str, partitions: int) -> None:
    key = customer_id.encode()
    ps = list(range(partitions))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, ps, ps)


def test_the_java_clients_values() -> None:
    """Kafka's own test cases (``UtilsTest.testMurmur2``), signed as Java returns them."""
    cases = {b"21": -973932308, b"foobar": -790332482,
             b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             b"abc": 479470107}
    for key, java in cases.items():
        assert murmur2(key) == java & 0xFFFFFFFF, key

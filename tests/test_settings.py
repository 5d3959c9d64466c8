"""Settings from the environment: switches read as an operator would write them, and a
value the service cannot use stops the start with the variable's name."""

from __future__ import annotations

import pytest

from streams.settings import Settings, SettingsError


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on"])
def test_a_switch_turns_on(raw: str) -> None:
    assert Settings.from_env({"MOT_BATCH_DELIVERY": raw}).batch_delivery is True


@pytest.mark.parametrize("raw", ["false", "0", "no", "off", " False "])
def test_a_switch_turns_off(raw: str) -> None:
    assert Settings.from_env({"MOT_BATCH_DELIVERY": raw}).batch_delivery is False


def test_batch_delivery_is_on_unless_switched_off() -> None:
    assert Settings.from_env({}).batch_delivery is True


def test_one_standby_copy_unless_told_otherwise() -> None:
    assert Settings.from_env({}).standby_replicas == 1
    assert Settings.from_env({"MOT_STANDBY_REPLICAS": "0"}).standby_replicas == 0


@pytest.mark.parametrize("env, name", [
    ({"MOT_BATCH_DELIVERY": "maybe"}, "MOT_BATCH_DELIVERY"),
    ({"MOT_MAX_POLL_RECORDS": "0"}, "MOT_MAX_POLL_RECORDS"),
    ({"MOT_STREAM_BUFFER_BATCHES": "0"}, "MOT_STREAM_BUFFER_BATCHES"),
    ({"MOT_STANDBY_REPLICAS": "-1"}, "MOT_STANDBY_REPLICAS"),
    ({"MOT_STANDBY_REPLICAS": "one"}, "MOT_STANDBY_REPLICAS"),
])
def test_an_unusable_value_names_its_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)

"""TLS and SASL settings reach every Kafka client the service builds: the Faust worker's
credentials and the plain aiokafka clients of the commands get the same connection."""

from __future__ import annotations

import ssl

import faust
import pytest

from streams.app import broker_credentials
from streams.kafka.clients import client_options
from streams.settings import Settings, SettingsError

BOOT = "kafka-1:9093,kafka-2:9093"


def settings(**env: str) -> Settings:
    return Settings.from_env({"MOT_KAFKA_BOOTSTRAP_SERVERS": BOOT, **env})


def test_plaintext_is_just_the_servers() -> None:
    assert client_options(settings()) == {"bootstrap_servers": BOOT,
                                          "security_protocol": "PLAINTEXT"}
    assert broker_credentials(settings()) is None


def test_sasl_over_tls_gives_credentials_and_a_tls_context() -> None:
    s = settings(MOT_KAFKA_SECURITY_PROTOCOL="sasl_ssl", MOT_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                 MOT_KAFKA_SASL_USERNAME="mot", MOT_KAFKA_SASL_PASSWORD="secret")
    opts = client_options(s)
    assert opts["security_protocol"] == "SASL_SSL"
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (opts["sasl_plain_username"], opts["sasl_plain_password"]) == ("mot", "secret")
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    creds = broker_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "mot" and creds.ssl_context is not None


def test_sasl_without_tls_defaults_to_plain() -> None:
    opts = client_options(settings(MOT_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                                   MOT_KAFKA_SASL_USERNAME="mot"))
    assert opts["sasl_mechanism"] == "PLAIN" and "ssl_context" not in opts


def test_tls_only_has_a_context_and_no_sasl() -> None:
    opts = client_options(settings(MOT_KAFKA_SECURITY_PROTOCOL="SSL"))
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in opts
    assert isinstance(broker_credentials(settings(MOT_KAFKA_SECURITY_PROTOCOL="SSL")),
                      faust.SSLCredentials)


@pytest.mark.parametrize(("env", "message"), [
    ({"MOT_KAFKA_SECURITY_PROTOCOL": "TLS"}, "MOT_KAFKA_SECURITY_PROTOCOL"),
    ({"MOT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "MOT_KAFKA_SASL_USERNAME"),
    ({"MOT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MOT_KAFKA_SASL_USERNAME": "mot",
      "MOT_KAFKA_SASL_MECHANISM": "GSSAPI"}, "MOT_KAFKA_SASL_MECHANISM"),
])
def test_a_security_setting_the_clients_cannot_use_is_refused(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**env)
